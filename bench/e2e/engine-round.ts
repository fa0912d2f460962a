// One timed round of moe-edge's engine, shared by Node and the Worker: prefill a prompt (in PREFILL_CHUNK
// chunks, as generate does), then greedy-decode `decode` tokens one forward pass at a time.
import { forward, PREFILL_CHUNK, Sequence } from '../../src/engine/forward';
import type { LoadedModel } from '../../src/engine/load';
import { argmax } from '../../src/engine/sampler';
import type { ObjectSource } from '../../src/store/source';

export interface RoundResult {
  prefillMs: number;
  decodeMs: number;
  tokens: number[]; // the decoded tokens (a check that both runtimes ran the same computation)
}


export async function engineRound(model: Pick<LoadedModel, 'kernels' | 'weights' | 'expertExecutor'>, prompt: readonly number[], decode: number, now: () => number): Promise<RoundResult> {
  const k = model.kernels;
  const seq = new Sequence(k, model.weights, prompt.length + decode);
  try {
    const t0 = now();
    let logits: Float32Array | undefined;
    for (let i = 0; i < prompt.length; i += PREFILL_CHUNK) {
      logits = (await forward(k, seq, model.expertExecutor, prompt.slice(i, i + PREFILL_CHUNK), { logits: 'last' }))[0];
    }
    const t1 = now();
    const tokens: number[] = [];
    for (let i = 0; i < decode; i++) {
      const t = argmax(logits!);
      tokens.push(t);
      logits = (await forward(k, seq, model.expertExecutor, [t], { logits: 'last' }))[0];
    }
    return { prefillMs: t1 - t0, decodeMs: now() - t1, tokens };
  } finally {
    seq.release();
  }
}

/** An ObjectSource over objects held in memory (the Worker receives the model from the driver). */
export function memorySource(objects: Map<string, Uint8Array>): ObjectSource {
  const get = (name: string) => {
    const b = objects.get(name);
    if (!b) throw new Error(`object ${name} was not sent`);
    return b;
  };
  return {
    get: async (name) => get(name),
    getRange: async (name, offset, length) => get(name).subarray(offset, offset + length),
    describe: () => 'memory',
  };
}

// One timed round of moe-edge's engine, shared by Node and the Worker: prefill a prompt (the engine's
// prefill(), as generate does), then greedy-decode `decode` tokens one forward pass at a time.
import { forward, Sequence } from '../../src/engine/forward';
import type { KvCacheType } from '../../src/engine/kv-cache';
import type { LocalModel } from '../../src/engine/load';
import { prefill } from '../../src/engine/prefill';
import { argmax } from '../../src/engine/sampler';
import type { ObjectSource } from '../../src/store/source';

export interface RoundResult {
  prefillMs: number;
  decodeMs: number;
  tokens: number[]; // the decoded tokens (a check that both runtimes ran the same computation)
}


/** kvType: the KV cache's element type (KV_CACHE_TYPE; default f32, the exact reference). */
export async function engineRound(model: Pick<LocalModel, 'kernels' | 'weights' | 'expertExecutor'>, prompt: readonly number[], decode: number, now: () => number, kvType: KvCacheType = 'f32'): Promise<RoundResult> {
  const k = model.kernels;
  const seq = new Sequence(k, model.weights, prompt.length + decode, { kvType });
  try {
    const t0 = now();
    let logits = (await prefill(k, seq, model.expertExecutor, prompt, { logits: 'last' }))[0];
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
    async *stream(name) {
      yield get(name);
    },
    describe: () => 'memory',
  };
}

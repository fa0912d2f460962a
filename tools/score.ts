// Logits for a token sequence, computed by the Worker's own engine and kernels (run in Node): what the
// CLI's `logits` prints and what the llama.cpp fixture tests compare.
import type { Kernels } from '../src/kernels/types';
import { forward, PREFILL_CHUNK, Sequence } from '../src/engine/forward';
import type { LoadedModel } from '../src/engine/load';

export type ScoreMode = 'prefill' | 'decode';

/** logits[i] = the model's logits after reading tokens[0..i]; prefill feeds chunks, decode one token at a time. */
export async function scoreTokens(model: Pick<LoadedModel, 'weights' | 'kernels' | 'expertExecutor'>, tokens: readonly number[], mode: ScoreMode = 'prefill'): Promise<Float32Array[]> {
  const k: Kernels = model.kernels;
  const seq = new Sequence(k, model.weights, tokens.length);
  try {
    const step = mode === 'prefill' ? PREFILL_CHUNK : 1;
    const out: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i += step) {
      out.push(...(await forward(k, seq, model.expertExecutor, tokens.slice(i, i + step), { logits: 'all' })));
    }
    return out;
  } finally {
    seq.release();
  }
}

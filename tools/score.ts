// Logits for a token sequence, computed by the Worker's own engine and kernels (run in Node): what the
// CLI's `logits` prints and what the llama.cpp fixture tests compare.
import type { Kernels } from '../src/kernels/types';
import { forward, Sequence } from '../src/engine/forward';
import type { LocalModel } from '../src/engine/load';
import { prefill } from '../src/engine/prefill';

export type ScoreMode = 'prefill' | 'decode';

/** logits[i] = the model's logits after reading tokens[0..i]; prefill feeds chunks, decode one token at a time. */
export async function scoreTokens(model: Pick<LocalModel, 'weights' | 'kernels' | 'expertExecutor' | 'kvCacheType'>, tokens: readonly number[], mode: ScoreMode = 'prefill'): Promise<Float32Array[]> {
  const k: Kernels = model.kernels;
  const seq = new Sequence(k, model.weights, tokens.length, { logits: 'all', kvType: model.kvCacheType });
  try {
    if (mode === 'prefill') return await prefill(k, seq, model.expertExecutor, tokens, { logits: 'all' });
    const out: Float32Array[] = [];
    for (const t of tokens) out.push(...(await forward(k, seq, model.expertExecutor, [t], { logits: 'all' })));
    return out;
  } finally {
    seq.release();
  }
}

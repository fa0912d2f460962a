// Logits through the split executor, for exactness checks in workerd and Node: prefill `tokens` (one
// forward call, every row's logits), then `decode` greedy steps (one row each). Runtime-agnostic.
import type { MoeOptions, MoeUsage } from '../../src/engine/api';
import { forward, Sequence } from '../../src/engine/forward';
import { argmax } from '../../src/engine/sampler';
import type { ServedModel } from '../../src/runtime/served-model';

export async function splitLogits(model: ServedModel, tokens: readonly number[], moe: MoeOptions, decode: number): Promise<{ rows: Float32Array[]; usage: MoeUsage }> {
  const g = model.beginExperts(moe);
  const seq = new Sequence(model.kernels, g.weights, tokens.length + decode, { logits: 'all' });
  try {
    const rows = await forward(model.kernels, seq, g.experts, tokens, { logits: 'all' });
    for (let i = 0; i < decode; i++) rows.push(...(await forward(model.kernels, seq, g.experts, [argmax(rows.at(-1)!)], { logits: 'last' })));
    return { rows, usage: { ...g.usage } };
  } finally {
    seq.release();
    g.end();
  }
}

/** A seeded random half of every layer's experts, as HOT_EXPERTS JSON. */
export function randomHalf(layers: number, experts: number, seed: number): string {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const out: Record<string, number[]> = {};
  for (let l = 0; l < layers; l++) {
    const ids = Array.from({ length: experts }, (_, e) => e);
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    out[String(l)] = ids.slice(0, experts >> 1).sort((a, b) => a - b);
  }
  return JSON.stringify({ layers: out });
}

// Token sampling: greedy at temperature 0, else temperature -> top-k -> top-p (nucleus) with a seeded PRNG,
// so the same seed and parameters reproduce the same output.
import type { SamplingParams } from './api';

/** mulberry32: tiny, fast, good enough for sampling; state is one uint32. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

export class Sampler {
  private readonly random: () => number;

  constructor(private readonly params: SamplingParams) {
    this.random = seededRandom(params.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  sample(logits: Float32Array): number {
    const { temperature, topK, topP } = this.params;
    if (temperature <= 0) return argmax(logits);
    // candidates sorted by logit, descending (stable: lower id first on ties)
    let ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0 && topK < ids.length) ids = ids.slice(0, topK);
    const max = logits[ids[0]];
    let probs = ids.map((i) => Math.exp((logits[i] - max) / temperature));
    let sum = probs.reduce((a, b) => a + b, 0);
    if (topP < 1) {
      let cum = 0;
      let keep = 0;
      while (keep < ids.length) {
        cum += probs[keep] / sum;
        keep++;
        if (cum >= topP) break;
      }
      ids = ids.slice(0, keep);
      probs = probs.slice(0, keep);
      sum = probs.reduce((a, b) => a + b, 0);
    }
    let r = this.random() * sum;
    for (let i = 0; i < ids.length; i++) {
      r -= probs[i];
      if (r <= 0) return ids[i];
    }
    return ids[ids.length - 1];
  }
}

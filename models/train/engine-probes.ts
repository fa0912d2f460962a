// Engine-side probes the default model's evaluation and unit tests share: routing counts through an
// ExpertExecutor that counts, greedy token ids from the engine's own forward pass, top-2 routing shares.
import { forward, Sequence } from '../../src/engine/forward';
import type { ExpertBatch, ExpertExecutor } from '../../src/engine/experts';
import type { LocalModel } from '../../src/engine/load';
import { prefill } from '../../src/engine/prefill';
import { argmax } from '../../src/engine/sampler';

/** Passes every batch on and counts routings: counts[layer][expert]. */
export class CountingExperts implements ExpertExecutor {
  readonly counts: number[][];

  constructor(private readonly inner: ExpertExecutor, layers: number, experts: number) {
    this.counts = Array.from({ length: layers }, () => new Array<number>(experts).fill(0));
  }

  run(b: ExpertBatch): Promise<void> | void {
    for (const slots of b.routes) for (const r of slots) this.counts[b.layer][r.expert]++;
    return this.inner.run(b);
  }
}

/** The model with its experts counted (for perplexity/scoring calls that take a LocalModel). */
export function withCounting(model: LocalModel): { model: LocalModel; counter: CountingExperts } {
  const a = model.manifest.architecture;
  const counter = new CountingExperts(model.expertExecutor, a.numLayers, a.numExperts);
  return { model: { ...model, expertExecutor: counter }, counter };
}

export interface Top2 {
  top2: [number, number];
  /** share of all routings in the layer that went to its two most used experts (uniform: topK / E) */
  share: number;
  counts: number[];
}

export function top2Shares(counts: number[][]): Top2[] {
  return counts.map((c) => {
    const order = c.map((_, e) => e).sort((x, y) => c[y] - c[x] || x - y);
    const total = c.reduce((s, n) => s + n, 0);
    return { top2: [order[0], order[1]], share: Math.round(((c[order[0]] + c[order[1]]) / total) * 1e4) / 1e4, counts: [...c] };
  });
}

/**
 * Greedy continuation as token ids, from the engine's forward pass: what `generate` at temperature 0
 * produces (argmax, first max on ties), stopping before an EOS id or a token in `stopIds`.
 */
export async function greedyTokens(model: LocalModel, prompt: readonly number[], maxTokens: number, stopIds: readonly number[] = []): Promise<number[]> {
  const k = model.kernels;
  const seq = new Sequence(k, model.weights, prompt.length + maxTokens);
  const stop = new Set([...model.manifest.generation.eosTokenIds, ...stopIds]);
  const out: number[] = [];
  try {
    let logits = (await prefill(k, seq, model.expertExecutor, prompt, { logits: 'last' }))[0];
    while (out.length < maxTokens) {
      const t = argmax(logits!);
      if (stop.has(t)) break;
      out.push(t);
      if (out.length < maxTokens) logits = (await forward(k, seq, model.expertExecutor, [t], { logits: 'last' }))[0];
    }
    return out;
  } finally {
    seq.release();
  }
}

/** Length of the common prefix of two id lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

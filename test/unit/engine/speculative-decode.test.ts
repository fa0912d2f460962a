// Self-speculative decoding on the default model in Node: the draft is the model restricted to a subset of its
// experts (cold picks dropped or substituted), the verifier the exact model. Greedy output equals plain greedy
// decoding token for token whatever the draft keeps; sampled output is reproducible from its seed, and the token
// after a fixed context follows the verifier's distribution (chi-square over 2,000 seeded passes, top-k 4, 3 degrees
// of freedom, rejected at p < 0.001: critical value 16.27).
import { beforeAll, describe, expect, it } from 'vitest';
import { forward, Sequence } from '../../../src/engine/forward';
import { loadTextModel, type LocalModel } from '../../../src/engine/load';
import { withExperts, type ModelWeights } from '../../../src/engine/model';
import { prefill } from '../../../src/engine/prefill';
import { argmax, seededRandom, tokenDistribution } from '../../../src/engine/sampler';
import { SpeculativeDecoder, type SpeculationStats } from '../../../src/engine/speculative-decode';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { newMoeUsage, SplitExperts } from '../../../src/remote/split-experts';
import { fsSource } from '../../../src/store/source-fs';

let m: LocalModel;
beforeAll(async () => {
  m = await loadTextModel(fsSource('models/default'), await loadNodeKernels());
});

/** The model restricted to the experts `keep` admits, cold picks handled by `policy`, never remote. */
function draftOf(keep: (layer: number, expert: number) => boolean, policy: 'drop' | 'substitute'): SplitExperts {
  return draftWithCount(keep, policy).draft;
}

/** The draft and the counter of its approximate picks (its cold calls). */
function draftWithCount(keep: (layer: number, expert: number) => boolean, policy: 'drop' | 'substitute') {
  const w: ModelWeights = withExperts(m.weights, m.weights.experts.map((row, l) => row.map((e, i) => (keep(l, i) ? e : undefined))));
  const usage = newMoeUsage(policy);
  return { draft: new SplitExperts({ kernels: m.kernels, weights: w, policy, degradedPolicy: policy, remote: null, actDType: 'q8_0', usage }), approximations: () => usage.cold_calls };
}

const prompt = () => m.encode('Once upon a time, the experts');
const DRAFTS: [string, (l: number, e: number) => boolean, 'drop' | 'substitute'][] = [
  ['all', () => true, 'drop'],
  ['seven in eight, substitute', (_l, e) => e % 8 !== 3, 'substitute'],
  ['half, substitute', (l, e) => (e + l) % 2 === 0, 'substitute'],
  ['a quarter, drop', (l, e) => (e + l) % 4 === 0, 'drop'],
  ['none, drop', () => false, 'drop'],
];

describe.each([false, true])('greedy, exact drafted positions accepted unverified: %s', (skipExact) => {
  it.each(DRAFTS)('draft %s: the same tokens as plain greedy decoding', async (_name, keep, policy) => {
    const k = m.kernels;
    const tokens = prompt();
    const N = 40;
    const plain = new Sequence(k, m.weights, tokens.length + N + 1);
    const spec = new Sequence(k, m.weights, tokens.length + N + 1);
    try {
      let t = argmax((await prefill(k, plain, m.expertExecutor, tokens, { logits: 'last' }))[0]);
      const want = [t];
      for (let i = 1; i < N; i++) want.push((t = argmax((await forward(k, plain, m.expertExecutor, [t], { logits: 'last' }))[0])));
      const stats: SpeculationStats = { speculative_drafted: 0, speculative_accepted: 0, verification_passes: 0, hot_hits: 0 };
      const { draft, approximations } = draftWithCount(keep, policy);
      const d = new SpeculativeDecoder(k, spec, m.expertExecutor, { draft, maxTokens: 4, stats, ...(skipExact ? { approximations } : {}) }, { temperature: 0, topK: 0, topP: 1 }, () => 0);
      let s = argmax((await prefill(k, spec, m.expertExecutor, tokens, { logits: 'last' }))[0]);
      const got = [s];
      for (let i = 1; i < N; i++) got.push((s = await d.next(s)));
      expect(got).toEqual(want);
      if (skipExact && _name === 'all') expect(stats.verification_passes).toBe(0); // every draft exact: nothing to verify
      else expect(stats.verification_passes).toBeGreaterThan(0);
      expect(stats.speculative_accepted).toBeLessThanOrEqual(stats.speculative_drafted);
      if (_name === 'all') expect(stats.speculative_accepted).toBe(stats.speculative_drafted); // the draft is the verifier
      if (skipExact && _name.startsWith('seven')) expect(stats.hot_hits).toBeGreaterThan(0); // some positions drafted exactly
    } finally {
      plain.release();
      spec.release();
    }
  });
});

describe('sampling', () => {
  const params = { temperature: 1, topK: 4, topP: 1 };

  it('a seed reproduces a speculative generation', async () => {
    const run = async (seed: number) => {
      const seq = new Sequence(m.kernels, m.weights, 64);
      try {
        const draw = seededRandom(seed);
        const d = new SpeculativeDecoder(m.kernels, seq, m.expertExecutor, { draft: draftOf((l, e) => e % 2 === 0, 'substitute'), maxTokens: 4, stats: { speculative_drafted: 0, speculative_accepted: 0, verification_passes: 0, hot_hits: 0 } }, params, draw);
        await prefill(m.kernels, seq, m.expertExecutor, prompt(), { logits: 'last' });
        const out = [5];
        for (let i = 0; i < 20; i++) out.push(await d.next(out.at(-1)!));
        return out;
      } finally {
        seq.release();
      }
    };
    expect(await run(11)).toEqual(await run(11));
    expect(await run(11)).not.toEqual(await run(12));
  });

  it('the token after a fixed context follows the verifier\'s distribution', async () => {
    const k = m.kernels;
    const tokens = prompt();
    const seq = new Sequence(k, m.weights, tokens.length + 8);
    try {
      const t0 = 7;
      await prefill(k, seq, m.expertExecutor, tokens, { logits: 'last' });
      const p = tokenDistribution((await forward(k, seq, m.expertExecutor, [t0], { logits: 'last' }))[0], params, new Float32Array(m.manifest.architecture.vocabSize));
      const draw = seededRandom(2024);
      const { draft, approximations } = draftWithCount((l, e) => e % 2 === 0, 'drop');
      const counts = new Map<number, number>();
      const N = 2000;
      for (let n = 0; n < N; n++) {
        seq.length = tokens.length; // the same context every time
        const d = new SpeculativeDecoder(k, seq, m.expertExecutor, { draft, approximations, maxTokens: 2, stats: { speculative_drafted: 0, speculative_accepted: 0, verification_passes: 0, hot_hits: 0 } }, params, draw);
        const next = await d.next(t0);
        counts.set(next, (counts.get(next) ?? 0) + 1);
      }
      const support = [...p.keys()].filter((t) => p[t] > 0);
      expect(support).toHaveLength(4);
      expect([...counts.keys()].every((t) => p[t] > 0)).toBe(true);
      const chi2 = support.reduce((s, t) => s + ((counts.get(t) ?? 0) - N * p[t]) ** 2 / (N * p[t]), 0);
      expect(chi2).toBeLessThan(16.27);
    } finally {
      seq.release();
    }
  }, 120_000);
});

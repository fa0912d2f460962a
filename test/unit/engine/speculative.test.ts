// Self-speculative decoding's acceptance: greedy keeps the longest agreeing prefix and the verifier's token; speculative
// sampling's output follows the verifier's distribution exactly. The statistical test: chi-square goodness of fit of
// the first emitted token over 20,000 seeded trials against the verifier's distribution, rejecting at p < 0.001
// (critical value 20.52 for 5 degrees of freedom); the same statistic on the raw drafts shows the test has power.
import { describe, expect, it } from 'vitest';
import { seededRandom, tokenDistribution } from '../../../src/engine/sampler';
import { acceptGreedy, acceptSampled, nextDraftLength, sampleDense } from '../../../src/engine/speculative';

const row = (...v: number[]) => Float32Array.from(v);

describe('greedy', () => {
  it('accepts the agreeing prefix, then the verifier\'s token; all agreeing gives the bonus token', () => {
    const rows = [row(0, 5, 1), row(9, 0, 1), row(0, 1, 7), row(3, 2, 1)];
    expect(acceptGreedy([1, 0, 2], rows)).toEqual({ accepted: 3, next: 0 });
    expect(acceptGreedy([1, 2, 2], rows)).toEqual({ accepted: 1, next: 0 });
    expect(acceptGreedy([0, 0, 2], rows)).toEqual({ accepted: 0, next: 1 });
    expect(() => acceptGreedy([1], rows)).toThrow(RangeError);
  });
});

describe('speculative sampling', () => {
  const V = 6;
  const CRITICAL = 20.52; // chi-square, 5 degrees of freedom, p = 0.001
  const chi2 = (counts: number[], probs: Float32Array, n: number) => counts.reduce((s, c, t) => s + (c - n * probs[t]) ** 2 / (n * probs[t]), 0);
  const params = { temperature: 0.8, topK: 0, topP: 1 };

  it.each([1, 3])('the first token follows the verifier, %i drafted', (k) => {
    const draw = seededRandom(1234);
    const verifierRows = Array.from({ length: k + 1 }, (_, i) => row(...Array.from({ length: V }, (_, t) => Math.sin(3 * t + i) * 2)));
    const draftRows = Array.from({ length: k }, (_, i) => row(...Array.from({ length: V }, (_, t) => Math.cos(2 * t + i) * 2)));
    const q = draftRows.map((r) => tokenDistribution(r, params, new Float32Array(V)));
    const p0 = tokenDistribution(verifierRows[0], params, new Float32Array(V));
    const N = 20_000;
    const first = new Array<number>(V).fill(0);
    const raw = new Array<number>(V).fill(0);
    let accepted = 0;
    for (let n = 0; n < N; n++) {
      const drafts = q.map((dist) => sampleDense(dist, 1, draw()));
      raw[drafts[0]]++;
      const v = acceptSampled(drafts, q, verifierRows, params, draw);
      first[v.accepted > 0 ? drafts[0] : v.next]++;
      accepted += v.accepted;
    }
    expect(chi2(first, p0, N)).toBeLessThan(CRITICAL);
    expect(chi2(raw, p0, N)).toBeGreaterThan(10 * CRITICAL); // the drafts alone are far from p: the test can fail
    expect(accepted).toBeGreaterThan(0);
  });

  it('a draft equal to the verifier is always accepted; the residual is used on rejection', () => {
    const r = row(1, 2, 3, 0.5, -1, 0);
    const q = tokenDistribution(r, params, new Float32Array(V));
    const draw = seededRandom(7);
    for (let n = 0; n < 200; n++) expect(acceptSampled([sampleDense(q, 1, draw())], [q], [r, r], params, draw).accepted).toBe(1);
    // a draft of a token the verifier gives no mass (top-k 1 keeps token 2 only): rejected, and the next is token 2
    const strict = { temperature: 1, topK: 1, topP: 1 };
    const wide = new Float32Array(V).fill(1 / V);
    for (let n = 0; n < 50; n++) expect(acceptSampled([0], [wide], [r, r], strict, draw)).toEqual({ accepted: 0, next: 2 });
  });
});

describe('draft length', () => {
  it('grows with the acceptance rate, within 1..max', () => {
    expect(nextDraftLength(0, 0, 8)).toBe(4);
    expect(nextDraftLength(12, 12, 8)).toBe(8); // two fully accepted passes
    expect(nextDraftLength(12, 3, 8)).toBe(1);
    expect(nextDraftLength(100, 95, 8)).toBe(8);
    expect(nextDraftLength(100, 20, 8)).toBe(1);
    expect(nextDraftLength(100, 80, 3)).toBe(3);
  });
});

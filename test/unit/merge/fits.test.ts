// The least-squares parts of a merge: the router row refit gives a merged group the probability mass its
// members had (better than the kept row alone), pruning keeps exactly the kept rows, and the down refit
// recovers a down projection that explains the targets.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/engine/sampler';
import { fitDown, hiddenActivations } from '../../../src/merge/down-fit';
import { fitMergedRouter, pruneRouter, solveSpd } from '../../../src/merge/router-fit';

const rand = seededRandom(11);
const randn = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);

describe('solveSpd', () => {
  it('solves a symmetric positive definite system', () => {
    const A = new Float64Array([4, 1, 0, 1, 3, 1, 0, 1, 2]);
    const x = [1, -2, 3];
    const b = new Float64Array([4 - 2, 1 - 6 + 3, -2 + 6]);
    Array.from(solveSpd(A, b, 3)).forEach((v, i) => expect(v).toBeCloseTo(x[i], 10));
  });
});

describe('router rows', () => {
  const H = 12;
  const E = 5;
  const N = 2000;
  const W = randn(E * H);
  // hidden states have a large common component (here feature 0), which the fit needs as its intercept: on
  // zero-mean isotropic inputs a linear row cannot follow max-like LSE and the kept row does as well
  const X = randn(N * H);
  for (let t = 0; t < N; t++) X[t * H] = 3;
  const softmax = (rows: Float32Array, n: number, x: number) => {
    const z = Array.from({ length: n }, (_, e) => rows.subarray(e * H, e * H + H).reduce((s, w, h) => s + w * X[x * H + h], 0));
    const m = Math.max(...z);
    const ex = z.map((v) => Math.exp(v - m));
    const s = ex.reduce((a, b) => a + b, 0);
    return ex.map((v) => v / s);
  };

  it('pruning keeps the kept rows as they were, in order', () => {
    const r = pruneRouter(W, H, [0, 2, 4]);
    expect(Array.from(r.subarray(H, 2 * H))).toEqual(Array.from(W.subarray(2 * H, 3 * H)));
    expect(r.length).toBe(3 * H);
  });

  it('the refitted row carries the group\'s probability mass closer than the kept row alone', () => {
    const kept = [0, 1, 2, 4];
    const merged = fitMergedRouter(W, H, kept, new Map([[1, [3]]]), X);
    const pruned = pruneRouter(W, H, kept);
    let errFit = 0;
    let errPrune = 0;
    for (let t = 0; t < N; t++) {
      const p = softmax(W, E, t);
      const want = p[1] + p[3];
      errFit += Math.abs(softmax(merged, 4, t)[1] - want);
      errPrune += Math.abs(softmax(pruned, 4, t)[1] - want);
    }
    expect(errFit).toBeLessThan(0.5 * errPrune);
    // rows of experts nothing merged into stay as they were
    expect(Array.from(merged.subarray(0, H))).toEqual(Array.from(W.subarray(0, H)));
  });
});

describe('fitDown', () => {
  it('recovers the down projection that produced the targets', () => {
    const I = 16;
    const H = 8;
    const N = 400;
    const w = { gate: randn(I * H), up: randn(I * H), down: randn(H * I) };
    const X = randn(N * H);
    const idx = Array.from({ length: N }, (_, t) => t);
    const A = hiddenActivations(w, X, idx, I, H);
    const Y = new Float32Array(N * H);
    for (let t = 0; t < N; t++) for (let h = 0; h < H; h++) for (let i = 0; i < I; i++) Y[t * H + h] += w.down[h * I + i] * A[t * I + i];
    const got = fitDown(A, Y, new Float32Array(H * I), I, H, 1e-9);
    got.forEach((v, i) => expect(v).toBeCloseTo(w.down[i], 3));
  });
});

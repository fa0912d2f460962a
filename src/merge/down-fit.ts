// The down projection of a merged expert, refitted: after the neuron-aligned average, the merged gate/up give
// hidden activations a(x) = silu(gate x) * (up x); down is the ridge least-squares map from a(x) to what the group
// used to answer on the calibration tokens it served (each token: its picked group members' outputs weighted by
// their routing weights), pulled toward the averaged down. Averaging alone cost more than it kept (the model card).
import { cholesky, choleskySolve, ridgedGram } from './router-fit';
import type { ExpertFloats } from './combine';

/** a (n, I) = silu(gate x) * (up x) for the rows `idx` of X (N, H). */
export function hiddenActivations(w: ExpertFloats, X: Float32Array, idx: readonly number[], I: number, H: number): Float64Array {
  const A = new Float64Array(idx.length * I);
  idx.forEach((t, r) => {
    const xo = t * H;
    for (let i = 0; i < I; i++) {
      let g = 0;
      let u = 0;
      for (let h = 0; h < H; h++) {
        g += w.gate[i * H + h] * X[xo + h];
        u += w.up[i * H + h] * X[xo + h];
      }
      A[r * I + i] = (g / (1 + Math.exp(-g))) * u;
    }
  });
  return A;
}

/**
 * down (H, I) minimising ||A down^T - Y||^2 + lambda ||down - prior||^2, A (n, I) from hiddenActivations, Y (n, H)
 * the targets; `ridge` is relative to the mean diagonal of A^T A.
 */
export function fitDown(A: Float64Array, Y: Float32Array, prior: Float32Array, I: number, H: number, ridge = 1e-3): Float32Array {
  const n = A.length / I;
  const { G: AtA, lambda } = ridgedGram(A, I, ridge);
  for (let a = 0; a < I; a++) AtA[a * I + a] += lambda;
  const L = cholesky(AtA, I); // lower triangle is all cholesky reads
  const down = new Float32Array(H * I);
  const rhs = new Float64Array(I);
  for (let h = 0; h < H; h++) {
    for (let a = 0; a < I; a++) rhs[a] = lambda * prior[h * I + a];
    for (let r = 0; r < n; r++) {
      const y = Y[r * H + h];
      if (y === 0) continue;
      for (let a = 0; a < I; a++) rhs[a] += A[r * I + a] * y;
    }
    const col = choleskySolve(L, rhs, I);
    for (let a = 0; a < I; a++) down[h * I + a] = col[a];
  }
  return down;
}

// The router of a merged layer. A softmax router gives a group of experts the probability mass
// exp(LSE) / Z, LSE = log sum_e exp(w_e . x) over the group: one row that scored LSE for every token would send
// exactly the tokens of the removed experts to the expert they were merged into. LSE is not linear in x, so each
// merged row is the least-squares fit of LSE on calibration inputs, pulled (ridge) toward the kept expert's row.
// Pure (f64 normal equations, Cholesky); no I/O.

/** log sum exp of the rows `group` of W (E, H) applied to x (H). */
function groupLse(W: Float32Array, H: number, group: readonly number[], x: Float32Array, xo: number): number {
  let max = -Infinity;
  const z = group.map((e) => {
    let s = 0;
    for (let h = 0; h < H; h++) s += W[e * H + h] * x[xo + h];
    if (s > max) max = s;
    return s;
  });
  return max + Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0));
}

/** The Cholesky factor L of A (n, n) symmetric positive definite, in A's lower triangle (A is overwritten). */
export function cholesky(A: Float64Array, n: number): Float64Array {
  const L = A;
  for (let j = 0; j < n; j++) {
    let d = L[j * n + j];
    for (let k = 0; k < j; k++) d -= L[j * n + k] * L[j * n + k];
    if (!(d > 0)) throw new RangeError('cholesky: matrix is not positive definite');
    d = Math.sqrt(d);
    L[j * n + j] = d;
    for (let i = j + 1; i < n; i++) {
      let s = L[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = s / d;
    }
  }
  return L;
}

/** w with L L^T w = b, L from cholesky(). */
export function choleskySolve(L: Float64Array, b: Float64Array, n: number): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= L[i * n + k] * y[k];
    y[i] = s / L[i * n + i];
  }
  const w = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * w[k];
    w[i] = s / L[i * n + i];
  }
  return w;
}

/**
 * The lower triangle of X^T X (d, d) for X (rows, d) row-major (all cholesky reads), and the ridge that goes on its
 * diagonal: `ridge` times the mean diagonal (1e-6 when that is 0).
 */
export function ridgedGram(X: ArrayLike<number>, d: number, ridge: number): { G: Float64Array; lambda: number } {
  const rows = X.length / d;
  const G = new Float64Array(d * d);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    for (let a = 0; a < d; a++) {
      const v = X[o + a];
      if (v === 0) continue;
      for (let b = 0; b <= a; b++) G[a * d + b] += v * X[o + b];
    }
  }
  let trace = 0;
  for (let a = 0; a < d; a++) trace += G[a * d + a];
  return { G, lambda: (ridge * trace) / d || 1e-6 };
}

/** Solves A w = b for A (n, n) symmetric positive definite (A is overwritten). */
export function solveSpd(A: Float64Array, b: Float64Array, n: number): Float64Array {
  return choleskySolve(cholesky(A, n), b, n);
}

/**
 * The new router (kept.length, H): row i is kept[i]'s own row when nothing merged into it, else the fit of the
 * group's LSE over the calibration inputs X (N, H). `ridge` is relative to the mean diagonal of X^T X.
 */
export function fitMergedRouter(W: Float32Array, H: number, kept: readonly number[], mergedInto: ReadonlyMap<number, readonly number[]>, X: Float32Array, ridge = 1e-3): Float32Array {
  const N = X.length / H;
  const out = pruneRouter(W, H, kept);
  if (![...mergedInto.values()].some((m) => m.length > 0)) return out;
  if (N === 0) throw new RangeError('fitMergedRouter: no calibration inputs');
  const { G: XtX, lambda } = ridgedGram(X, H, ridge); // once for the layer, shared by every merged row
  kept.forEach((k, i) => {
    const members = mergedInto.get(k) ?? [];
    if (members.length === 0) return;
    const group = [k, ...members];
    const rhs = new Float64Array(H);
    for (let t = 0; t < N; t++) {
      const y = groupLse(W, H, group, X, t * H);
      for (let h = 0; h < H; h++) rhs[h] += X[t * H + h] * y;
    }
    const A = XtX.slice();
    for (let h = 0; h < H; h++) {
      A[h * H + h] += lambda;
      rhs[h] += lambda * W[k * H + h];
    }
    const w = solveSpd(A, rhs, H);
    for (let h = 0; h < H; h++) out[i * H + h] = w[h];
  });
  return out;
}

/** Router rows of `kept` only (pruning: the removed experts' rows dropped, the rest as they were). */
export function pruneRouter(W: Float32Array, H: number, kept: readonly number[]): Float32Array {
  const out = new Float32Array(kept.length * H);
  kept.forEach((k, i) => out.set(W.subarray(k * H, k * H + H), i * H));
  return out;
}

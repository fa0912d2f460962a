// Throwaway: packed q4_0 (q4_0x4) vs ggml layout — bit-exact check across executors, then time per token.
// Run: npx tsx wasm/dev/check-packed.mts
import { loadNodeKernels } from '../../src/kernels/load-node';
import type { Kernels, Mat } from '../../src/kernels/types';
const rel = await loadNodeKernels('relaxed'), simd = await loadNodeKernels('simd'), sc = await loadNodeKernels('scalar');
let seed = 1; const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
function mat(k: Kernels, rows: number, cols: number, bytes: Uint8Array, sc: Float32Array, pack: boolean): Mat {
  const n = rows * cols, data = k.heap.alloc(n / 2 + n / 8);
  k.heap.u8(data, n / 2).set(bytes); k.heap.f32(data + n / 2, n / 32).set(sc);
  const m: Mat = { dtype: 'q4_0', rows, cols, data, scales: data + n / 2 };
  if (pack) k.packWeights!(m);
  return m;
}
function run(k: Kernels, m: Mat, x: Float32Array, nTok: number): Float32Array {
  const xp = k.heap.alloc(x.length * 4), yp = k.heap.alloc(nTok * m.rows * 4);
  k.heap.f32(xp, x.length).set(x); k.matmul(m, xp, yp, nTok);
  const y = k.heap.f32(yp, nTok * m.rows).slice(); k.heap.release(yp); k.heap.release(xp); return y;
}
for (const [rows, cols] of [[64, 128], [8, 96], [37, 160], [512, 1024], [1024, 512]]) {
  const n = rows * cols, bytes = new Uint8Array(n / 2).map(() => (rnd() * 256) | 0), s = new Float32Array(n / 32).map(() => rnd() * 0.02);
  const ref = mat(simd, rows, cols, bytes, s, false), a = mat(rel, rows, cols, bytes, s, true), b = mat(sc, rows, cols, bytes, s, true), c = mat(rel, rows, cols, bytes, s, false);
  for (const nTok of [1, 2, 4, 5, 9, 33]) {
    const x = new Float32Array(nTok * cols).map(() => rnd() * 2 - 1);
    const y0 = run(simd, ref, x, nTok), y1 = run(rel, a, x, nTok), y2 = run(sc, b, x, nTok), y3 = run(rel, c, x, nTok);
    const same = (p: Float32Array, q: Float32Array) => p.every((v, i) => Object.is(v, q[i]));
    if (!same(y0, y1) || !same(y0, y2) || !same(y0, y3)) console.log('MISMATCH', rows, cols, nTok, same(y0, y1), same(y0, y2), same(y0, y3), y0[0], y1[0], y2[0]);
  }
}
console.log('exactness done');
// timing: relaxed, ggml layout vs packed, matmul 1024x512 / 512x1024 (granite expert shapes), weights hot-ish
for (const [rows, cols] of (process.env.SHAPES ? JSON.parse(process.env.SHAPES) : [[512, 1024], [1024, 512]])) {
  const n = rows * cols, bytes = new Uint8Array(n / 2).map(() => (rnd() * 256) | 0), s = new Float32Array(n / 32).fill(0.01);
  const A = mat(rel, rows, cols, bytes, s, false), B = mat(rel, rows, cols, bytes, s, true);
  const line: string[] = [];
  for (const nTok of (process.env.NTOK ? JSON.parse(process.env.NTOK) : [1, 4, 16, 64])) {
    const x = new Float32Array(nTok * cols).map(() => rnd() * 2 - 1);
    const xp = rel.heap.alloc(x.length * 4), yp = rel.heap.alloc(nTok * rows * 4); rel.heap.f32(xp, x.length).set(x);
    const best = [1e9, 1e9];
    for (let r = 0; r < 30; r++) for (const [i, m] of [A, B].entries()) { const t = performance.now(); for (let j = 0; j < 8; j++) rel.matmul(m, xp, yp, nTok); best[i] = Math.min(best[i], (performance.now() - t) / 8); }
    line.push(`nTok ${nTok}: ggml ${(best[0] * 1000 / nTok).toFixed(1)} packed ${(best[1] * 1000 / nTok).toFixed(1)} us/tok (${(best[0] / best[1]).toFixed(2)}x)`);
    rel.heap.release(yp); rel.heap.release(xp);
  }
  console.log(`${rows}x${cols}: ${line.join(' | ')}`);
}

// Throwaway: a variant's SIMD q8_0/q4_0 matmul must equal its scalar twin bit for bit (random weights incl. -128).
// Usage: VARIANT=r4 npx tsx wasm/dev/check.ts
import { readFileSync } from 'node:fs';
import { instantiateKernels } from '../../src/kernels/wasm';
const name = process.env.VARIANT ?? 'main';
let bad = 0;
for (const kind of ['simd', 'relaxed']) {
  const file = name === 'main' ? `wasm/build/kernels-${kind}.wasm` : `wasm/dev/build/${name}-${kind}.wasm`;
  const { ex, heap } = instantiateKernels(new WebAssembly.Module(readFileSync(file)));
  const f = ex as unknown as Record<string, Function>;
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 16777216;
  for (const dt of ['q8_0', 'q4_0']) for (const [rows, cols] of [[1, 32], [3, 64], [8, 96], [13, 160], [64, 64], [101, 224], [1024, 512], [512, 1024]]) for (const nTok of [1, 3]) {
    const n = rows * cols, qb = dt === 'q8_0' ? n : n / 2;
    const w = heap.alloc(qb); heap.u8(w, qb).forEach((_, i, a) => { a[i] = (rnd() * 256) | 0; });
    const s = heap.alloc(n / 8); heap.f32(s, n / 32).forEach((_, i, a) => { a[i] = (rnd() - 0.5) * 0.02; });
    const x = heap.alloc(cols * 4 * nTok); heap.f32(x, cols * nTok).forEach((_, i, a) => { a[i] = (rnd() - 0.5) * 4; });
    const y1 = heap.alloc(rows * 4 * nTok), y2 = heap.alloc(rows * 4 * nTok);
    const code = dt === 'q8_0' ? 2 : 3;
    const sc = heap.alloc(ex.matmul_scratch(code, cols, nTok));
    f[`matmul_${dt}`](w, s, rows, cols, x, y1, nTok, sc);
    f[`matmul_${dt}_scalar`](w, s, rows, cols, x, y2, nTok, sc);
    const a = heap.u8(y1, rows * 4 * nTok), b = heap.u8(y2, rows * 4 * nTok);
    if (a.some((v, i) => v !== b[i])) { bad++; console.log('MISMATCH', kind, dt, rows, cols, nTok); }
    for (const p of [w, s, x, y1, y2, sc]) heap.release(p);
  }
}
console.log(name, bad ? `${bad} mismatches` : 'all bit-identical');

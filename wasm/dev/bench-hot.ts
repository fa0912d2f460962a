// Throwaway: kernel throughput with the weights hot in L2 (one matrix reused), to separate compute from memory,
// plus the cost of quantizing the input row alone (rows = 1). Run: npx tsx wasm/dev/bench-hot.ts
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import { instantiateKernels } from '../../src/kernels/wasm';

const mods = await loadNodeKernelModules();
const cases: [string, WebAssembly.Module, string][] = [
  ['scalar', mods.simd, '_scalar'], ['simd', mods.simd, ''], ...(mods.relaxed ? [['relaxed', mods.relaxed, ''] as [string, WebAssembly.Module, string]] : []),
];
function time(fn: () => void, iters: number): number {
  let b = Infinity;
  for (let r = 0; r < 60; r++) { const t0 = performance.now(); for (let i = 0; i < iters; i++) fn(); b = Math.min(b, (performance.now() - t0) / iters); }
  return b * 1000; // us
}
for (const [name, mod, suffix] of cases) {
  const { ex, heap } = instantiateKernels(mod);
  for (const dt of ['q8_0', 'q4_0']) {
    for (const [rows, cols] of [[1024, 512], [512, 1024]]) {
      const n = rows * cols, qb = dt === 'q8_0' ? n : n / 2;
      const w = heap.alloc(qb); heap.u8(w, qb).forEach((_, i, a) => { a[i] = (i * 2654435761) >>> 24; });
      const s = heap.alloc(n / 8); heap.f32(s, n / 32).fill(0.01);
      const x = heap.alloc(cols * 4); heap.f32(x, cols).forEach((_, i, a) => { a[i] = Math.sin(i); });
      const y = heap.alloc(rows * 4);
      const code = dt === 'q8_0' ? 2 : 3;
      const sc = heap.alloc(ex.matmul_scratch(code, cols, 1));
      const f = (ex as unknown as Record<string, Function>)[`matmul_${dt}${suffix}`];
      const it = suffix ? 3 : 25;
      const us = time(() => f(w, s, rows, cols, x, y, 1, sc), it);
      const q = time(() => f(w, s, 1, cols, x, y, 1, sc), 300);
      console.log(`${name.padEnd(8)} ${dt} ${rows}x${cols}: ${us.toFixed(1)} us = ${((qb + n / 8) / us / 1e3).toFixed(1)} GB/s hot; quantize+1 row: ${q.toFixed(2)} us`);
    }
  }
}

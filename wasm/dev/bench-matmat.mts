// Throwaway: mat-mat (prefill) time per token vs mat-vec, weights hot. Run: npx tsx wasm/dev/bench-matmat.mts
import { loadNodeKernels } from '../../src/kernels/load-node';
for (const v of ['simd', 'relaxed'] as const) {
  const k = await loadNodeKernels(v);
  for (const dtype of ['q8_0', 'q4_0'] as const) {
    const rows = 1024, cols = 512, n = rows * cols;
    const data = k.heap.alloc(dtype === 'q8_0' ? n : n / 2), scales = k.heap.alloc(n / 8);
    k.heap.f32(scales, n / 32).fill(0.01);
    const m = { dtype, rows, cols, data, scales };
    const line: string[] = [];
    for (const nTok of [1, 4, 16, 64]) {
      const x = k.heap.alloc(nTok * cols * 4), y = k.heap.alloc(nTok * rows * 4);
      k.heap.f32(x, nTok * cols).forEach((_, i, a) => { a[i] = Math.sin(i); });
      let best = 1e9;
      for (let r = 0; r < 40; r++) { const t = performance.now(); for (let i = 0; i < 4; i++) k.matmul(m, x, y, nTok); best = Math.min(best, (performance.now() - t) / 4); }
      line.push(`nTok=${nTok}: ${((best * 1000) / nTok).toFixed(1)} us/token`);
      k.heap.release(y); k.heap.release(x);
    }
    console.log(`${k.name} ${dtype} ${rows}x${cols}: ${line.join(', ')}`);
  }
}

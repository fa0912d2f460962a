// Throwaway: decode attention time (nTok=1) at a long context, per variant. Run: npx tsx wasm/dev/bench-attention.mts
import { loadNodeKernels } from '../../src/kernels/load-node';
for (const v of ['scalar', 'simd', 'relaxed'] as const) {
  const k = await loadNodeKernels(v);
  const ctx = 1024, shape = { nHead: 16, nKvHead: 4, headDim: 64, scale: 0.125 };
  const kv = ctx * shape.nKvHead * shape.headDim;
  const q = k.heap.alloc(16 * 64 * 4), kc = k.heap.alloc(kv * 4), vc = k.heap.alloc(kv * 4), out = k.heap.alloc(16 * 64 * 4);
  k.heap.f32(kc, kv).forEach((_, i, a) => { a[i] = Math.sin(i) * 0.1; });
  k.heap.f32(vc, kv).forEach((_, i, a) => { a[i] = Math.cos(i); });
  k.heap.f32(q, 1024).forEach((_, i, a) => { a[i] = Math.sin(i * 3); });
  let best = 1e9;
  for (let r = 0; r < 30; r++) { const t = performance.now(); for (let i = 0; i < 5; i++) k.attention(q, kc, vc, out, 1, ctx - 1, shape); best = Math.min(best, (performance.now() - t) / 5); }
  console.log(`${k.name}: decode attention ctx=${ctx} 16 heads x 64 (GQA 4): ${(best * 1000).toFixed(0)} us`);
}

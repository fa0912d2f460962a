// Throwaway: decode attention over a long KV cache of each dtype, two builds of kernels-relaxed.wasm interleaved, over
// LAYERS caches in turn (24, granite's count: out of cache as in a model; LAYERS=1 keeps one cache in L2/L3), the
// outputs compared bit for bit. Run: OLD=dir NEW=dir [DTYPES=f32,f16,q8_0,q4_0] [CTX=1024] npx tsx wasm/dev/ab-attention-kv.mts
import { readFileSync } from 'node:fs';
import { createWasmKernels } from '../../src/kernels/wasm';
import { quantize, f16ToF32, encodeTensor, type DType } from '../../src/format/quant';
import type { Kernels, Mat } from '../../src/kernels/types';
const builds = ['OLD', 'NEW'].map((e) => createWasmKernels(new WebAssembly.Module(readFileSync(`${process.env[e]}/kernels-relaxed.wasm`)), 'relaxed'));
const ctx = +(process.env.CTX ?? 1024), shape = { nHead: 16, nKvHead: 8, headDim: 64, scale: 0.125 }, kvDim = 512;
function cache(k: Kernels, dtype: DType, vals: Float32Array): Mat {
  if (dtype === 'f32' || dtype === 'f16') { const b = encodeTensor(dtype, vals); const p = k.heap.alloc(b.length); k.heap.u8(p, b.length).set(b); return { dtype, rows: ctx, cols: kvDim, data: p, scales: 0 }; }
  const q = quantize(dtype, vals); const p = k.heap.alloc(q.qs.length), s = k.heap.alloc(q.d.length * 4);
  k.heap.u8(p, q.qs.length).set(q.qs); k.heap.f32(s, q.d.length).set(Float32Array.from(q.d, f16ToF32));
  return { dtype, rows: ctx, cols: kvDim, data: p, scales: s };
}
const kv = Float32Array.from({ length: ctx * kvDim }, (_, i) => Math.sin(i * 0.37));
for (const dtype of (process.env.DTYPES ?? 'f32,f16,q8_0,q4_0').split(',') as DType[]) {
  const runs = builds.map((k) => {
    const q = k.heap.alloc(1024 * 4), out = k.heap.alloc(1024 * 4); k.heap.f32(q, 1024).forEach((_, i, a) => { a[i] = Math.sin(i * 3); });
    const layers = Array.from({ length: +(process.env.LAYERS ?? 24) }, () => [cache(k, dtype, kv), cache(k, dtype, kv)]);
    return { run: (nTok: number) => { for (const [K, V] of layers) k.attention(q, K, V, out, nTok, ctx - nTok, shape); return layers.length; },
      out: () => k.heap.f32(out, 1024).slice() };
  });
  const outs = runs.map((r) => { r.run(1); return r.out(); });
  const same = outs[0].every((v, i) => Object.is(v, outs[1][i]));
  const best = [1e9, 1e9];
  for (let r = 0; r < +(process.env.ROUNDS ?? 15); r++) runs.forEach(({ run }, i) => { const t = performance.now(); const n = run(1); best[i] = Math.min(best[i], (performance.now() - t) / n); });
  console.log(`${dtype} decode attention ctx ${ctx}, per layer: old ${(best[0] * 1000).toFixed(0)} us, new ${(best[1] * 1000).toFixed(0)} us (${(best[0] / best[1]).toFixed(2)}x), ${same ? 'same bits' : 'OUTPUTS DIFFER'}`);
}

// Throwaway: attention over a quantized KV cache, two builds: outputs bit for bit, and time of a 64-token prefill
// chunk and of one decode step at the end of the context. Run: OLD=dir NEW=dir [CTX=1024] npx tsx wasm/dev/ab-attention-prefill.mts
import { readFileSync } from 'node:fs';
import { createWasmKernels } from '../../src/kernels/wasm';
import { quantize, f16ToF32, encodeTensor, type DType } from '../../src/format/quant';
import type { Kernels, Mat } from '../../src/kernels/types';
const builds = ['OLD', 'NEW'].map((e) => createWasmKernels(new WebAssembly.Module(readFileSync(`${process.env[e]}/kernels-relaxed.wasm`)), 'relaxed'));
const ctx = +(process.env.CTX ?? 1024), shape = { nHead: 16, nKvHead: 8, headDim: 64, scale: 0.125 }, kvDim = 512, qDim = 1024;
function cache(k: Kernels, dtype: DType, vals: Float32Array): Mat {
  if (dtype === 'f16') { const b = encodeTensor(dtype, vals); const p = k.heap.alloc(b.length); k.heap.u8(p, b.length).set(b); return { dtype, rows: ctx, cols: kvDim, data: p, scales: 0 }; }
  const q = quantize(dtype, vals); const p = k.heap.alloc(q.qs.length), s = k.heap.alloc(q.d.length * 4);
  k.heap.u8(p, q.qs.length).set(q.qs); k.heap.f32(s, q.d.length).set(Float32Array.from(q.d, f16ToF32));
  return { dtype, rows: ctx, cols: kvDim, data: p, scales: s };
}
const kv = Float32Array.from({ length: ctx * kvDim }, (_, i) => Math.sin(i * 0.37));
const qv = Float32Array.from({ length: 64 * qDim }, (_, i) => Math.sin(i * 3.1));
for (const dtype of ['f16', 'q8_0', 'q4_0'] as DType[]) {
  const runs = builds.map((k) => {
    const q = k.heap.alloc(qv.length * 4), out = k.heap.alloc(qv.length * 4);
    const K = cache(k, dtype, kv), V = cache(k, dtype, kv);
    return (nTok: number, pos0: number) => { k.heap.f32(q, qv.length).set(qv); k.attention(q, K, V, out, nTok, pos0, shape); return k.heap.f32(out, nTok * qDim).slice(); };
  });
  for (const [nTok, pos0] of [[64, ctx - 64], [1, ctx - 1], [7, 3], [64, 0]]) {
    const [a, b] = runs.map((r) => r(nTok, pos0));
    if (!a.every((x, i) => Object.is(x, b[i]))) console.log(`MISMATCH ${dtype} nTok ${nTok} pos0 ${pos0}`);
  }
  for (const [label, nTok] of [['prefill chunk of 64', 64], ['decode', 1]] as const) {
    const best = [1e9, 1e9];
    for (let r = 0; r < 6; r++) runs.forEach((run, i) => { const t = performance.now(); run(nTok, ctx - nTok); best[i] = Math.min(best[i], performance.now() - t); });
    console.log(`${dtype} ${label} at ${ctx}: old ${(best[0] * 1000).toFixed(0)} us, new ${(best[1] * 1000).toFixed(0)} us (${(best[0] / best[1]).toFixed(2)}x)`);
  }
}

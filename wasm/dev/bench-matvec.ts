// Throwaway benchmark: q8_0 / q4_0 mat-vec GB/s (weight bytes incl. f32 scales) per variant over a weight set
// larger than the caches, against a v128 streaming read of the same bytes. Run: npx tsx wasm/dev/bench-matvec.ts
import { memoryBytes } from '../../src/format/quant';
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import { createWasmKernels, type WasmVariant } from '../../src/kernels/wasm';
import type { Mat } from '../../src/kernels/types';

const TOTAL = 256 * 1024 * 1024;
const shapes: [number, number][] = [[1024, 512], [512, 1024]];
const nTok = Number(process.env.NTOK ?? 1);

function fill(u8: Uint8Array): void {
  let s = 12345;
  for (let i = 0; i < u8.length; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; u8[i] = s >>> 24; }
}

function best(fn: () => number, reps = 5): number {
  let b = Infinity;
  for (let i = 0; i < reps; i++) b = Math.min(b, fn());
  return b;
}

const mods = await loadNodeKernelModules();
const variants: [WasmVariant, WebAssembly.Module][] = [['scalar', mods.simd], ['simd', mods.simd]];
if (mods.relaxed) variants.push(['relaxed', mods.relaxed]);

for (const [variant, mod] of variants) {
  const k = createWasmKernels(mod, variant);
  for (const dtype of ['q8_0', 'q4_0'] as const) {
    for (const [rows, cols] of shapes) {
      const n = rows * cols;
      const qb = dtype === 'q8_0' ? n : n / 2;
      const bytes = memoryBytes(dtype, n);
      const count = Math.floor((variant === 'scalar' ? TOTAL / 8 : TOTAL) / bytes);
      const mats: Mat[] = [];
      for (let i = 0; i < count; i++) {
        const data = k.heap.alloc(qb);
        fill(k.heap.u8(data, qb));
        const scales = k.heap.alloc((n / 32) * 4);
        k.heap.f32(scales, n / 32).fill(0.01);
        mats.push({ dtype, rows, cols, data, scales });
      }
      const x = k.heap.alloc(cols * 4 * nTok);
      k.heap.f32(x, cols * nTok).forEach((_, i, a) => { a[i] = Math.sin(i); });
      const y = k.heap.alloc(rows * 4 * nTok);
      for (const m of mats.slice(0, 50)) k.matmul(m, x, y, nTok); // warm up / tier up
      const s = best(() => {
        const t0 = performance.now();
        for (const m of mats) k.matmul(m, x, y, nTok);
        return (performance.now() - t0) / 1000;
      });
      const gbs = (bytes * count) / s / 1e9;
      const us = (s / count) * 1e6;
      console.log(`${k.name.padEnd(13)} ${dtype} ${rows}x${cols} nTok=${nTok}: ${gbs.toFixed(2)} GB/s weights (${us.toFixed(1)} us/call, ${count} mats)`);
      for (const m of mats) { k.heap.release(m.data); k.heap.release(m.scales); }
      k.heap.release(x); k.heap.release(y);
    }
  }
}

// the yardstick: a v128 streaming read over the same amount of memory
{
  const k = createWasmKernels(mods.simd, 'simd');
  const p = k.heap.alloc(TOTAL);
  fill(k.heap.u8(p, TOTAL));
  // exports are not on Kernels; instantiate a bare module over the same idea
  const { instantiateKernels } = await import('../../src/kernels/wasm');
  const { ex, heap } = instantiateKernels(mods.simd);
  const q = heap.alloc(TOTAL);
  heap.u8(q, TOTAL).set(k.heap.u8(p, TOTAL));
  ex.stream_read(q, TOTAL);
  const s = best(() => { const t0 = performance.now(); ex.stream_read(q, TOTAL); return (performance.now() - t0) / 1000; });
  console.log(`stream_read v128 over ${TOTAL >> 20} MiB: ${(TOTAL / s / 1e9).toFixed(2)} GB/s`);
}

// Throwaway A/B: mat-vec GB/s of weight bytes for module variants built by build-variant.mjs, each round also
// timing a v128 streaming read over the same bytes; prints best-of for each and the ratio of bests.
// Usage: VARIANTS=base,nopf npx tsx wasm/dev/bench-ab.ts
import { readFileSync } from 'node:fs';
import { memoryBytes } from '../../src/format/quant';
import { createWasmKernels, type WasmVariant } from '../../src/kernels/wasm';
import type { Mat } from '../../src/kernels/types';

const TOTAL = Number(process.env.MB ?? 256) * 1024 * 1024;
const ROUNDS = Number(process.env.ROUNDS ?? 12);
const names = (process.env.VARIANTS ?? 'base').split(',');
const kinds = (process.env.KINDS ?? 'simd,relaxed').split(',') as WasmVariant[];
const dtypes = (process.env.DTYPES ?? 'q8_0,q4_0').split(',') as ('q8_0' | 'q4_0')[];
const shapes: [number, number][] = [[1024, 512], [512, 1024]];
const streamers = new Map<object, (p: number, n: number) => number>();

for (const dtype of dtypes) for (const [rows, cols] of shapes) for (const kind of kinds) {
  const line: string[] = [];
  for (const name of names) {
    const file = name === 'main' ? `wasm/build/kernels-${kind === 'scalar' ? 'simd' : kind}.wasm` : `wasm/dev/build/${name}-${kind === 'scalar' ? 'simd' : kind}.wasm`;
    const mod = new WebAssembly.Module(readFileSync(file));
    const k = createWasmKernels(mod, kind);
    const n = rows * cols, qb = dtype === 'q8_0' ? n : n / 2, bytes = memoryBytes(dtype, n);
    const count = Math.floor(TOTAL / bytes);
    const first = k.heap.alloc(qb);
    const mats: Mat[] = [];
    for (let i = 0; i < count; i++) {
      const data = i ? k.heap.alloc(qb) : first;
      const scales = k.heap.alloc((n / 32) * 4);
      mats.push({ dtype, rows, cols, data, scales });
    }
    const span = mats[count - 1].scales + (n / 32) * 4 - first;
    const u8 = k.heap.u8(first, span);
    for (let i = 0; i < span; i += 4096) u8[i] = i * 7;
    const x = k.heap.alloc(cols * 4); k.heap.f32(x, cols).forEach((_, i, a) => { a[i] = Math.sin(i); });
    const y = k.heap.alloc(rows * 4);
    const sp = first;
    let bestMv = Infinity, bestSr = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      let t0 = performance.now();
      for (const m of mats) k.matmul(m, x, y, 1);
      bestMv = Math.min(bestMv, performance.now() - t0);
      t0 = performance.now();
      streamRead(k, sp, span);
      bestSr = Math.min(bestSr, performance.now() - t0);
    }
    const mv = (bytes * count) / bestMv / 1e6, sr = span / bestSr / 1e6;
    line.push(`${name}: ${mv.toFixed(1)} GB/s (stream ${sr.toFixed(1)}, ratio ${(mv / sr).toFixed(2)})`);
  }
  console.log(`${dtype} ${rows}x${cols} ${kind.padEnd(7)} ${line.join(' | ')}`);
}

// stream_read on the executor's own memory: a second instance importing the same memory
function streamRead(k: ReturnType<typeof createWasmKernels>, p: number, bytes: number): void {
  const ex = streamers.get(k) ?? (() => {
    const file = 'wasm/build/kernels-simd.wasm';
    const inst = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), { env: { memory: k.heap.memory } });
    const f = inst.exports.stream_read as (p: number, n: number) => number;
    streamers.set(k, f);
    return f;
  })();
  ex(p, bytes - (bytes % 64));
}

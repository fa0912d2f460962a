// Throwaway A/B with the variants interleaved round by round: per round and variant, a streaming read then the
// mat-vec over the same bytes; prints the median per-round ratio and the best GB/s of each variant.
// Usage: VARIANTS=main,r4 KINDS=relaxed DTYPES=q8_0 npx tsx wasm/dev/bench-x.ts
import { readFileSync } from 'node:fs';
import { memoryBytes } from '../../src/format/quant';
import { createWasmKernels, type WasmVariant } from '../../src/kernels/wasm';
import type { Mat } from '../../src/kernels/types';

const TOTAL = Number(process.env.MB ?? 96) * 1024 * 1024;
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const names = (process.env.VARIANTS ?? 'main').split(',');
const kinds = (process.env.KINDS ?? 'relaxed').split(',') as WasmVariant[];
const dtypes = (process.env.DTYPES ?? 'q8_0').split(',') as ('q8_0' | 'q4_0')[];
const shapes: [number, number][] = [[1024, 512], [512, 1024]];
const med = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };

for (const dtype of dtypes) for (const [rows, cols] of shapes) for (const kind of kinds) {
  const setups = names.map((name) => {
    const file = name === 'main' ? `wasm/build/kernels-${kind === 'scalar' ? 'simd' : kind}.wasm` : `wasm/dev/build/${name}-${kind === 'scalar' ? 'simd' : kind}.wasm`;
    const k = createWasmKernels(new WebAssembly.Module(readFileSync(file)), kind);
    const n = rows * cols, qb = dtype === 'q8_0' ? n : n / 2, bytes = memoryBytes(dtype, n);
    const count = Math.floor(TOTAL / bytes);
    const first = k.heap.alloc(qb);
    const mats: Mat[] = [];
    for (let i = 0; i < count; i++) {
      const data = i ? k.heap.alloc(qb) : first;
      mats.push({ dtype, rows, cols, data, scales: k.heap.alloc((n / 32) * 4) });
    }
    const span = mats[count - 1].scales + (n / 32) * 4 - first;
    const u8 = k.heap.u8(first, span);
    for (let i = 0; i < span; i += 64) u8[i] = (i * 2654435761) >>> 24;
    const x = k.heap.alloc(cols * 4); k.heap.f32(x, cols).forEach((_, i, a) => { a[i] = Math.sin(i); });
    const y = k.heap.alloc(rows * 4);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(readFileSync('wasm/build/kernels-simd.wasm')), { env: { memory: k.heap.memory } });
    const sr = inst.exports.stream_read as (p: number, n: number) => number;
    return { name, k, mats, x, y, first, span, bytes: bytes * count, sr, ratios: [] as number[], best: 0 };
  });
  for (let r = 0; r < ROUNDS; r++) for (const s of setups) {
    let t0 = performance.now();
    s.sr(s.first, s.span - (s.span % 64));
    const st = s.span / (performance.now() - t0) / 1e6;
    t0 = performance.now();
    for (const m of s.mats) s.k.matmul(m, s.x, s.y, 1);
    const mv = s.bytes / (performance.now() - t0) / 1e6;
    s.ratios.push(mv / st); s.best = Math.max(s.best, mv);
  }
  console.log(`${dtype} ${rows}x${cols} ${kind.padEnd(7)} ` + setups.map((s) => `${s.name}: ratio ${med(s.ratios).toFixed(3)} best ${s.best.toFixed(1)}`).join(' | '));
}

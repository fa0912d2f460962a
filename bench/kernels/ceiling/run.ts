// `npx tsx bench/kernels/ceiling/run.ts`: the q4_0 mat-vec (granite's 512 x 1024 shape, in L2) in the relaxed WASM
// kernels against the same instruction mix in C, 128-bit and 256-bit (q4-matvec.c, AVX-VNNI): how far the kernel is
// from what its instructions allow on this core, and what 256-bit vectors (native llama.cpp's) would add. Rounds in
// turn, the fastest of each; recorded in bench/results/q4-ceiling.{json,md}. Needs gcc and an AVX-VNNI CPU.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { quantize, f16ToF32 } from '../../../src/format/quant';

const ROWS = 512, COLS = 1024; // must match q4-matvec.c
const here = new URL('.', import.meta.url).pathname;

interface NativeRun { bits: number; gbps: number; cyclesPerGroup: number; ghz: number }

function buildNative(dir: string, wide: boolean): string {
  const out = join(dir, wide ? 'c256' : 'c128');
  execFileSync('gcc', ['-O2', '-mavx2', '-mavxvnni', ...(wide ? ['-DWIDE'] : []), join(here, 'q4-matvec.c'), '-o', out]);
  return out;
}

async function wasmRate(): Promise<() => number> {
  const k = await loadNodeKernels('relaxed');
  const v = Float32Array.from({ length: ROWS * COLS }, (_, i) => Math.sin(i * 0.37));
  const q = quantize('q4_0', v);
  const data = k.heap.alloc(q.qs.length + q.d.length * 4);
  k.heap.u8(data, q.qs.length).set(q.qs);
  k.heap.f32(data + q.qs.length, q.d.length).set(Float32Array.from(q.d, f16ToF32));
  const m = { dtype: 'q4_0' as const, rows: ROWS, cols: COLS, data, scales: data + q.qs.length };
  k.packWeights?.(m);
  const x = k.heap.alloc(COLS * 4), y = k.heap.alloc(ROWS * 4);
  k.heap.f32(x, COLS).set(Float32Array.from({ length: COLS }, (_, i) => Math.cos(i)));
  const bytes = q.qs.length + q.d.length * 4;
  return () => {
    const reps = 2000, t0 = performance.now();
    for (let r = 0; r < reps; r++) k.matmul(m, x, y, 1);
    return (bytes * reps) / ((performance.now() - t0) / 1000) / 1e9;
  };
}

const dir = mkdtempSync(join(tmpdir(), 'q4-ceiling-'));
let natives: [string, string];
try {
  natives = [buildNative(dir, false), buildNative(dir, true)];
} catch (e) {
  console.error(`bench/kernels/ceiling: gcc could not build q4-matvec.c with AVX-VNNI (${(e as Error).message.split('\n')[0]})`);
  process.exit(1);
}
const wasm = await wasmRate();
const uptime = loadavg().map((l) => l.toFixed(2)).join(' ');
const runs: { wasm: number[]; c128: NativeRun[]; c256: NativeRun[] } = { wasm: [], c128: [], c256: [] };
for (let round = 0; round < 3; round++) {
  wasm(); // warm-up
  runs.wasm.push(Math.max(wasm(), wasm(), wasm()));
  runs.c128.push(JSON.parse(execFileSync(natives[0], { encoding: 'utf8' })) as NativeRun);
  runs.c256.push(JSON.parse(execFileSync(natives[1], { encoding: 'utf8' })) as NativeRun);
}
const best = (xs: number[]) => Math.max(...xs);
const w = best(runs.wasm), c128 = best(runs.c128.map((r) => r.gbps)), c256 = best(runs.c256.map((r) => r.gbps));
const cyc = (rs: NativeRun[]) => Math.min(...rs.map((r) => r.cyclesPerGroup));
const clock = runs.c128[0].ghz;
const wasmCycles = (ROWS * (COLS / 2 + (COLS / 32) * 4)) / (w * 1e9) * clock * 1e9 / ((ROWS / 4) * (COLS / 128));
const result = { date: new Date().toISOString(), cpu: cpus()[0]?.model, loadavg: uptime, shape: { rows: ROWS, cols: COLS }, ghz: clock,
  wasmGbps: w, c128Gbps: c128, c256Gbps: c256, wasmCyclesPerGroup: wasmCycles, c128CyclesPerGroup: cyc(runs.c128), c256CyclesPerGroup: cyc(runs.c256), runs };
const md = [
  '# The q4_0 mat-vec against its instruction mix in C',
  '',
  `\`npx tsx bench/kernels/ceiling/run.ts\` — ${result.date}, ${result.cpu}, load ${uptime}, clock ${clock.toFixed(2)} GHz (a dependent-add loop).`,
  `Granite's ${ROWS} x ${COLS} q4_0 matrix in L2 (quants + f32 scales counted), the fastest of three rounds in turn.`,
  '',
  '| kernel | GB/s | cycles per group (4 rows x 4 blocks) | vs WASM |',
  '|---|---|---|---|',
  `| WASM relaxed SIMD (V8, Node ${process.versions.node}) | ${w.toFixed(1)} | ${wasmCycles.toFixed(1)} | 1.00 |`,
  `| C, 128-bit AVX-VNNI (the same loop: WebAssembly's width) | ${c128.toFixed(1)} | ${cyc(runs.c128).toFixed(1)} | ${(c128 / w).toFixed(2)} |`,
  `| C, 256-bit AVX-VNNI (native llama.cpp's width) | ${c256.toFixed(1)} | ${cyc(runs.c256).toFixed(1)} | ${(c256 / w).toFixed(2)} |`,
  '',
  'Read: the first two rows apart say what V8\'s code costs over the best code for the same instructions; the last',
  'says what twice the vector width would add. Out of cache the kernel cannot beat its in-cache rate, so the 128-bit',
  'row bounds the q4_0 expert FFN\'s "of the streaming read" from above (bench/results/latest.md).',
  '',
];
writeFileSync('bench/results/q4-ceiling.json', JSON.stringify(result, null, 2) + '\n');
writeFileSync('bench/results/q4-ceiling.md', md.join('\n'));
console.log(md.join('\n'));

// Throwaway: granite's expert FFN at 1/4/16/64 tokens on the relaxed build's two integer-dot paths (i16, fused), interleaved
// in one process, weights out of cache. Run with the runtime to judge: npx tsx wasm/dev/ab-fused-ffn.mts (Node 22), or
// another Node: /path/to/node --import tsx wasm/dev/ab-fused-ffn.mts. Q=q8_0 for one quant.
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import { makeKernels, makeStreamReader } from '../../bench/matvec/executors';
import { prepareStream } from '../../bench/matvec/measure';
import { measureFfn } from '../../bench/kernels/ffn';
const modules = await loadNodeKernelModules();
const stream = makeStreamReader(modules);
const SB = 64 * 2 ** 20; const sp = prepareStream(stream, SB);
const ks = { i16: makeKernels(modules, 'wasm-relaxed'), fused: makeKernels(modules, 'wasm-relaxed-fused') };
const s = { model: 'granite', hidden: 1024, inter: 512 };
const opts = { rounds: 3, minMs: 150, slices: 3, poolBytes: 64 * 2 ** 20 };
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const quant of (process.env.Q ?? 'q4_0,q8_0').split(',') as ('q4_0' | 'q8_0')[]) for (const batch of [1, 4, 16, 64]) {
  const out: string[] = [];
  const g: Record<string, number[]> = { i16: [], fused: [] };
  for (let r = 0; r < 2; r++) for (const [name, k] of Object.entries(ks)) { const x = measureFfn(k, stream, sp, SB, quant, s, batch, opts, () => performance.now()); g[name].push(med(x.gbps)); }
  console.log(`${quant} B=${batch}: i16 ${Math.max(...g.i16).toFixed(1)} fused ${Math.max(...g.fused).toFixed(1)} GB/s (${(Math.max(...g.fused) / Math.max(...g.i16)).toFixed(2)}x)`);
}

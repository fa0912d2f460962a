// Throwaway: granite's expert FFN (gate, up, down) per batch on two builds of kernels-relaxed.wasm, weights out of cache,
// interleaved. Run: A=old.wasm B=new.wasm [Q=q4_0,q8_0] [FUSED=0|1] npx tsx wasm/dev/ab-ffn-builds.mts (B defaults to wasm/build)
import { readFileSync } from 'node:fs';
import { createWasmKernels } from '../../src/kernels/wasm';
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import { makeStreamReader } from '../../bench/matvec/executors';
import { prepareStream } from '../../bench/matvec/measure';
import { measureFfn } from '../../bench/kernels/ffn';
const modules = await loadNodeKernelModules();
const stream = makeStreamReader(modules);
const SB = 64 * 2 ** 20; const sp = prepareStream(stream, SB);
const ks = { base: createWasmKernels(new WebAssembly.Module(readFileSync(process.env.A ?? 'wasm/dev/build/base-relaxed.wasm')), 'relaxed', { maximumPages: 16384, fusedDot: process.env.FUSED === undefined ? undefined : process.env.FUSED === '1' }), now: process.env.B ? createWasmKernels(new WebAssembly.Module(readFileSync(process.env.B)), 'relaxed', { maximumPages: 16384, fusedDot: process.env.FUSED === undefined ? undefined : process.env.FUSED === '1' }) : createWasmKernels(modules.relaxed!, 'relaxed', { maximumPages: 16384, fusedDot: process.env.FUSED === undefined ? undefined : process.env.FUSED === '1' }) };
console.log('now fused:', ks.now.fusedDot);
const s = { model: 'granite', hidden: 1024, inter: 512 };
const opts = { rounds: 3, minMs: 150, slices: 3, poolBytes: 64 * 2 ** 20 };
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const quant of (process.env.Q ?? 'q4_0,q8_0').split(',') as ('q4_0' | 'q8_0')[]) for (const batch of (process.env.BATCHES ?? '1,4,16,64').split(',').map(Number)) {
  const g: Record<string, number[]> = { base: [], now: [] }, q: Record<string, number[]> = { base: [], now: [] };
  for (let r = 0; r < +(process.env.R ?? 2); r++) for (const [name, k] of Object.entries(ks)) { const x = measureFfn(k, stream, sp, SB, quant, s, batch, opts, () => performance.now()); g[name].push(med(x.gbps)); q[name].push(med(x.gbps.map((v, i) => v / x.streamGbps[i]))); }
  console.log(`${quant} B=${batch}: base ${Math.max(...g.base).toFixed(2)} now ${Math.max(...g.now).toFixed(2)} GB/s (${(Math.max(...g.now) / Math.max(...g.base)).toFixed(2)}x); of stream base ${med(q.base).toFixed(3)} now ${med(q.now).toFixed(3)}`);
}

// Throwaway: granite's expert FFN per batch in Node and in local workerd, interleaved, same build: where workerd trails.
// Usage: npx tsx wasm/dev/workerd-vs-node/run.ts   (EX=wasm-relaxed for the i16 path; Q=q4_0 for one quant; B=1,4)
import { fileURLToPath } from 'node:url';
import { startLocalWorker } from '../../../tools/dev/local-worker';
import { loadNodeKernelModules } from '../../../src/kernels/load-node';
import { BenchContext } from '../../../bench/matvec/executors';
import { prepareStream, type Executor, type Quant } from '../../../bench/matvec/measure';
import { makeStreamReader } from '../../../bench/matvec/executors';
import { measureFfn } from '../../../bench/kernels/ffn';
const modules = await loadNodeKernelModules();
const ctx = new BenchContext(modules);
const reader = makeStreamReader(modules);
const SB = 64 * 2 ** 20; const sp = prepareStream(reader, SB);
const executor = (process.env.EX ?? 'wasm-relaxed-fused') as Executor;
const w = await startLocalWorker({ config: fileURLToPath(new URL('./wrangler.toml', import.meta.url)), persistTo: false });
try {
  for (const quant of (process.env.Q ?? 'q4_0,q8_0').split(',') as Quant[]) for (const batch of (process.env.B ?? '1,4,16,64').split(',').map(Number)) {
    const node: number[] = [], wd: number[] = [], ns: number[] = [], ws: number[] = [];
    for (let r = 0; r < 2; r++) {
      const x = measureFfn(ctx.executor(executor), reader, sp, SB, quant, { model: 'granite', hidden: 1024, inter: 512 }, batch, { rounds: 3, minMs: 300, slices: 3, poolBytes: 64 * 2 ** 20 }, () => performance.now());
      node.push(Math.max(...x.gbps)); ns.push(Math.max(...x.streamGbps));
      const res = await w.fetch('http://x/', { method: 'POST', body: JSON.stringify({ quant, batch, executor }) });
      if (!res.ok) throw new Error(await res.text());
      const j = await res.json() as { gbps: number; stream: number };
      wd.push(j.gbps); ws.push(j.stream);
    }
    const m = (a: number[]) => Math.max(...a);
    console.log(`${executor} ${quant} B=${batch}: Node ${m(node).toFixed(1)} GB/s (stream ${m(ns).toFixed(1)}), workerd ${m(wd).toFixed(1)} (stream ${m(ws).toFixed(1)}): workerd/Node ${(m(wd) / m(node)).toFixed(2)}x, stream ${(m(ws) / m(ns)).toFixed(2)}x`);
  }
} finally { await w.dispose(); }

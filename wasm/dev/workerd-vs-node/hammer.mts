// Throwaway: keeps local workerd busy on one expert-FFN case (worker.ts) so perf-jit.sh can sample its JIT code.
// Q=q8_0 B=4 N=12 EX=wasm-relaxed-fused npx tsx wasm/dev/workerd-vs-node/hammer.mts
import { fileURLToPath } from 'node:url';
import { startLocalWorker } from '../../../tools/dev/local-worker';
const w = await startLocalWorker({ config: fileURLToPath(new URL('./wrangler.toml', import.meta.url)), persistTo: false });
const quant = process.env.Q ?? 'q8_0', batch = Number(process.env.B ?? 4), executor = process.env.EX ?? 'wasm-relaxed-fused';
try {
  for (let i = 0; i < Number(process.env.N ?? 12); i++) {
    const res = await w.fetch('http://x/', { method: 'POST', body: JSON.stringify({ quant, batch, executor }) });
    console.log(i, await res.text());
  }
} finally { await w.dispose(); }

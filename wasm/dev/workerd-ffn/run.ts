// Throwaway: the expert FFN (granite's shape) at 1/4/16/64 tokens in local workerd, i16 vs fused dots, 2 rounds each.
// Usage: npx tsx wasm/dev/workerd-ffn/run.ts
import { fileURLToPath } from 'node:url';
import { startLocalWorker } from '../../../tools/dev/local-worker';
const w = await startLocalWorker({ config: fileURLToPath(new URL('./wrangler.toml', import.meta.url)), persistTo: false });
try {
  for (const quant of ['q4_0', 'q8_0']) for (const batch of [1, 4, 16, 64]) {
    const g: Record<string, number> = {};
    for (let r = 0; r < 2; r++) for (const executor of ['wasm-relaxed', 'wasm-relaxed-fused']) {
      const res = await w.fetch('http://x/', { method: 'POST', body: JSON.stringify({ quant, batch, executor }) });
      if (!res.ok) throw new Error(await res.text());
      const j = await res.json() as { gbps: number };
      g[executor] = Math.max(g[executor] ?? 0, j.gbps);
    }
    console.log(`${quant} B=${batch}: i16 ${g['wasm-relaxed'].toFixed(2)} fused ${g['wasm-relaxed-fused'].toFixed(2)} (${(g['wasm-relaxed-fused'] / g['wasm-relaxed']).toFixed(2)}x)`);
  }
} finally { await w.dispose(); }

// Throwaway: old vs new kernels in local workerd, interleaved per case. Usage: npx tsx wasm/dev/workerd-ab/run.ts
import { fileURLToPath } from 'node:url';
import { DEFAULT_OPTIONS, type CaseResult, type CaseSpec } from '../../../bench/matvec/measure';
import { startLocalWorker } from '../../../tools/dev/local-worker';

const worker = await startLocalWorker({ config: fileURLToPath(new URL('./wrangler.toml', import.meta.url)) });
const opts = { ...DEFAULT_OPTIONS, rounds: Number(process.env.ROUNDS ?? 5) };
try {
  for (const quant of (process.env.DTYPES ?? 'q8_0,q4_0').split(',')) for (const [rows, cols] of [[512, 1024], [1024, 512]]) for (const executor of (process.env.KINDS ?? 'wasm-relaxed,wasm-simd').split(',')) {
    const line: string[] = [];
    for (const which of (process.env.WHICH ?? 'old,new,old,new').split(',')) {
      const spec = { name: 'ab', quant, rows, cols, executor } as unknown as CaseSpec;
      const res = await worker.fetch('http://ab/', { method: 'POST', body: JSON.stringify({ which, spec, opts }) });
      if (!res.ok) throw new Error(await res.text());
      const r = (await res.json()) as CaseResult;
      const ratios = r.gbps.map((g, i) => g / r.streamGbps[i]).sort((a, b) => a - b);
      line.push(`${which} best ${Math.max(...r.gbps).toFixed(1)} GB/s ratio ${ratios[ratios.length >> 1].toFixed(2)}`);
    }
    console.log(`${quant} ${rows}x${cols} ${executor}: ${line.join(' | ')}`);
  }
} finally {
  await worker.dispose();
}

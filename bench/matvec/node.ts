// Node half of the mat-vec benchmark: every case run in this process. `npx tsx bench/matvec/node.ts` prints
// the table; `npm run bench:matvec` (run.ts) calls runNode and records the results.
import { fileURLToPath } from 'node:url';
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import { parseBenchArgs } from './args';
import { buildCases, GRANITE, type ExpertDims } from './cases';
import { defaultModelDims } from './default-model';
import { availableExecutors, BenchContext } from './executors';
import { median, type CaseResult, type MeasureOptions } from './measure';

export async function runNode(models: readonly ExpertDims[], opts: MeasureOptions, log: (line: string) => void): Promise<CaseResult[]> {
  const ctx = new BenchContext(await loadNodeKernelModules());
  const cases = buildCases(models, availableExecutors(ctx.modules));
  const out: CaseResult[] = [];
  for (const [i, spec] of cases.entries()) {
    const r = ctx.measure(spec, opts, () => performance.now());
    log(`node ${i + 1}/${cases.length} ${describe(r)}`);
    out.push(r);
  }
  return out;
}

export function describe(r: CaseResult): string {
  const g = median(r.gbps);
  const s = median(r.streamGbps);
  return `${r.name} ${r.rows}x${r.cols} ${r.quant} ${r.executor}: ${g.toFixed(2)} GB/s, stream ${s.toFixed(2)} GB/s, ratio ${(g / s).toFixed(3)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dims = await defaultModelDims();
  console.log(`default model: ${dims.source}`);
  await runNode([GRANITE, dims], parseBenchArgs(process.argv.slice(2)), console.log);
}

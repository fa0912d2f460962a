// Merge benchmark: the default model at 8 (original), 6, 5 and 4 experts per layer, pruned and merged by
// `merge-experts` from its calibration statistics; for each, held-out perplexity per domain, held-out sums and
// the hit rate of a 50% hot set. Records bench/results/merge.{json,md}.
//   npx tsx bench/merge/run.ts [--model models/default] [--keep 6,5,4] [--ppl-tokens n] [--no-record]
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { readManifest } from '../../src/store/source';
import { fsSource } from '../../src/store/source-fs';
import { edgeSizes, totalExpertBytes } from '../../src/planning/sizes';
import { buildCalibration, DEFAULT_OUT, DEFAULTS, defaultCorpus } from '../../models/calibration/build';
import { mergeExperts, type MergeMethod } from '../../tools/merge-experts';
import { scoreModel, type ModelScore } from './measure';
import { renderMerge, type MergeRow } from './report';

const { values: o } = parseArgs({
  options: { model: { type: 'string', default: 'models/default' }, keep: { type: 'string', default: '6,5,4' }, 'ppl-tokens': { type: 'string' }, 'no-record': { type: 'boolean', default: false } },
});
const log = (l: string) => process.stderr.write(`bench:merge: ${l}\n`);
const argv = process.argv.slice(2);
const command = `npx tsx bench/merge/run.ts${argv.length ? ` ${argv.join(' ')}` : ''}`;
const WORK = '.tmp/bench-merge';

const sets = await buildCalibration({ ...DEFAULTS, out: DEFAULT_OUT, corpus: defaultCorpus() });
const original = await readManifest(fsSource(o.model));
const inputs = {
  dataDir: `${DEFAULT_OUT}/data`, calibration: sets.calibration, heldout: sets.heldout,
  originalExpertBytes: totalExpertBytes(edgeSizes(original)), pplTokens: o['ppl-tokens'] ? Number(o['ppl-tokens']) : undefined,
};
await mkdir(WORK, { recursive: true });
const rows: MergeRow[] = [];
const row = (experts: number, method: MergeMethod | 'original', s: ModelScore, seconds: number, merged?: MergeRow['merged']): MergeRow => ({
  experts, method, perplexity: s.perplexity, sums: s.sums, hotSet: s.hotSet, seconds, ...(merged ? { merged } : {}),
});
let t0 = performance.now();
const base = await scoreModel(o.model, inputs);
rows.push(row(original.architecture.numExperts, 'original', base, 0));
log(`original: ${JSON.stringify(base.perplexity)} sums ${base.sums.correct}/${base.sums.total} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
const statsFile = `${WORK}/stats.json`;
await writeFile(statsFile, JSON.stringify(base.stats) + '\n');
for (const keep of o.keep.split(',').map(Number)) {
  for (const method of ['prune', 'merge'] as const) {
    const out = `${WORK}/${method}${keep}`;
    await rm(out, { recursive: true, force: true });
    t0 = performance.now();
    const r = await mergeExperts({ model: o.model, stats: statsFile, keep: String(keep), method, calibration: sets.calibration, out });
    const seconds = (performance.now() - t0) / 1000;
    const s = await scoreModel(out, inputs);
    rows.push(row(keep, method, s, seconds, method === 'merge' ? r.merged : undefined));
    log(`${method} ${keep}: ${JSON.stringify(s.perplexity)} sums ${s.sums.correct}/${s.sums.total}, hot 50% ${(s.hotSet.half.hitRate * 100).toFixed(1)}% (tool ${seconds.toFixed(0)} s)`);
  }
}
const results = { benchmark: 'merge', date: new Date().toISOString(), command, model: { dir: o.model, name: original.name, numExperts: original.architecture.numExperts, topK: original.architecture.topK }, pplTokens: inputs.pplTokens ?? null, rows };
const md = renderMerge(results);
process.stdout.write(md);
if (!o['no-record']) {
  await writeFile('bench/results/merge.json', JSON.stringify(results, null, 2) + '\n');
  await writeFile('bench/results/merge.md', md);
  log('wrote bench/results/merge.json and bench/results/merge.md');
}

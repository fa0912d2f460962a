// Merge benchmark: the default model at 8 (original), 6, 5 and 4 experts per layer, pruned and merged by
// `merge-experts` from its calibration statistics; for each, held-out perplexity per domain, held-out sums and
// the hit rate of a 50% hot set. Records bench/results/merge.{json,md}.
// With --ablation (default on) the first --keep is also merged without the down refit and without the router
// refit, to show what each step of the merge buys.
//   npx tsx bench/merge/run.ts [--model models/default] [--keep 6,5,4] [--ppl-tokens n] [--no-ablation] [--no-record]
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { readManifest } from '../../src/store/source';
import { fsSource } from '../../src/store/source-fs';
import { edgeSizes, totalExpertBytes } from '../../src/planning/sizes';
import { buildCalibration, DEFAULT_OUT, DEFAULTS, defaultCorpus } from '../../models/calibration/build';
import { mergeExperts, type MergeMethod } from '../../tools/merge-experts';
import { scoreModel, type ModelScore } from './measure';
import { writeCardSection } from './card';
import { renderMerge, type MergeRow } from './report';

const { values: o } = parseArgs({
  options: { model: { type: 'string', default: 'models/default' }, keep: { type: 'string', default: '6,5,4' }, 'ppl-tokens': { type: 'string' }, 'no-ablation': { type: 'boolean', default: false }, 'no-record': { type: 'boolean', default: false } },
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
const row = (experts: number, method: string, s: ModelScore, seconds: number, merged?: MergeRow['merged']): MergeRow => ({
  experts, method, perplexity: s.perplexity, sums: s.sums, hotSet: s.hotSet, seconds, ...(merged ? { merged } : {}),
});
let t0 = performance.now();
const base = await scoreModel(o.model, inputs);
rows.push(row(original.architecture.numExperts, 'original', base, 0));
log(`original: ${JSON.stringify(base.perplexity)} sums ${base.sums.correct}/${base.sums.total} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
const statsFile = `${WORK}/stats.json`;
await writeFile(statsFile, JSON.stringify(base.stats) + '\n');
const VARIANTS: { label: string; method: MergeMethod; downRefit?: boolean; routerFit?: boolean; ablation?: boolean }[] = [
  { label: 'prune', method: 'prune' },
  { label: 'merge', method: 'merge' },
  { label: 'merge, average only (no down refit)', method: 'merge', downRefit: false, ablation: true },
  { label: 'merge, kept router row (no router refit)', method: 'merge', routerFit: false, ablation: true },
];
const keeps = o.keep.split(',').map(Number);
for (const keep of keeps) {
  for (const v of VARIANTS) {
    if (v.ablation && (o['no-ablation'] || keep !== keeps[0])) continue;
    const out = `${WORK}/${v.label.replace(/[^a-z]+/g, '-')}${keep}`;
    await rm(out, { recursive: true, force: true });
    t0 = performance.now();
    const r = await mergeExperts({ model: o.model, stats: statsFile, keep: String(keep), method: v.method, calibration: sets.calibration, out, downRefit: v.downRefit, routerFit: v.routerFit });
    const seconds = (performance.now() - t0) / 1000;
    const s = await scoreModel(out, inputs);
    rows.push(row(keep, v.label, s, seconds, v.method === 'merge' && !v.ablation ? r.merged : undefined));
    log(`${v.label} ${keep}: ${JSON.stringify(s.perplexity)} sums ${s.sums.correct}/${s.sums.total}, hot 50% ${(s.hotSet.half.hitRate * 100).toFixed(1)}% (tool ${seconds.toFixed(0)} s)`);
  }
}
const results = { benchmark: 'merge', date: new Date().toISOString(), command, model: { dir: o.model, name: original.name, numExperts: original.architecture.numExperts, topK: original.architecture.topK }, pplTokens: inputs.pplTokens ?? null, rows };
const md = renderMerge(results);
process.stdout.write(md);
if (!o['no-record']) {
  await writeFile('bench/results/merge.json', JSON.stringify(results, null, 2) + '\n');
  await writeFile('bench/results/merge.md', md);
  log('wrote bench/results/merge.json and bench/results/merge.md');
  if (o.model === 'models/default') {
    await writeCardSection('models/default/README.md', results);
    log('updated the section "Fewer experts" of models/default/README.md');
  }
}

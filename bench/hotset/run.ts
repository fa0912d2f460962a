// Hot-set benchmark: builds the calibration and held-out prompt sets from the default model's data split,
// profiles the calibration set with the engine, plans global and per-domain hot sets at 25/50/75% of the
// expert bytes, and measures on held-out prompts the share of routings served at the edge and the skill
// map's accuracy; optionally mixed precision with its measured perplexity cost, and the cold policies' quality
// (held-out perplexity under substitute / drop / remote at each budget).
//   npm run bench:hotset [-- --model models/default --calibration 160 --heldout 40 --ppl-tokens 2048 --no-mixed --no-quality --no-record]
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { fsSource } from '../../src/store/source-fs';
import { planHotSet } from '../../src/planning/planner';
import { edgeSizes, totalExpertBytes } from '../../src/planning/sizes';
import { restrictSkillMap } from '../../src/routing/skill-map';
import { hitRates, type RoutingStats } from '../../src/routing/stats';
import { buildCalibration, DEFAULT_OUT, DEFAULTS, defaultCorpus, DOMAINS } from '../../models/calibration/build';
import { perplexity, textTokens } from '../../tools/perplexity';
import { loadProfiled, parsePrompts, profilePrompts, promptTokens, routeTokens } from '../../tools/profile';
import { budgetRows, plansAt, skillAccuracy, type RoutedPrompt } from './measure';
import { MixedPrecisionExperts } from './q4';
import { measureQuality } from './quality';
import { renderMarkdown, type HotsetResults, type MixedRow } from './report';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/default' },
    calibration: { type: 'string', default: String(DEFAULTS.calibration) },
    heldout: { type: 'string', default: String(DEFAULTS.heldout) },
    'ppl-tokens': { type: 'string', default: '2048' },
    'no-mixed': { type: 'boolean', default: false },
    'no-quality': { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
  },
});
const SHARES = [0.25, 0.5, 0.75];
const log = (l: string) => process.stderr.write(`bench:hotset: ${l}\n`);
const argv = process.argv.slice(2);
const command = `npm run bench:hotset${argv.length ? ` -- ${argv.join(' ')}` : ''}`;

// 1. prompt sets from the trainer's own split (models/train/data.py), into a gitignored folder
const sets = await buildCalibration({ ...DEFAULTS, out: DEFAULT_OUT, corpus: defaultCorpus(), calibration: Number(o.calibration), heldout: Number(o.heldout) });
log(`prompt sets: ${JSON.stringify(sets.counts)}`);

// 2. routing statistics of the calibration set
const p = await loadProfiled(o.model);
const manifest = p.model.manifest;
const a = manifest.architecture;
let t0 = performance.now();
const stats: RoutingStats = await profilePrompts(p, parsePrompts(await readFile(sets.calibration, 'utf8'), sets.calibration));
await writeFile(`${DEFAULT_OUT}/stats.json`, JSON.stringify(stats) + '\n');
log(`profiled ${stats.overall.prompts} calibration prompts (${stats.overall.tokens} tokens) in ${((performance.now() - t0) / 1000).toFixed(1)} s -> ${DEFAULT_OUT}/stats.json`);
if (!stats.skillMap) throw new Error('the calibration set needs at least two domains for a skill map');

// 3. held-out prompts routed: the first half of the tokens is what the skill map sees, all are scored
t0 = performance.now();
const routed: RoutedPrompt[] = [];
for (const q of parsePrompts(await readFile(sets.heldout, 'utf8'), sets.heldout)) {
  const tokens = promptTokens(p, q.text);
  const r = await routeTokens(p, tokens, Math.ceil(tokens.length / 2));
  routed.push({ domain: q.domain, prefix: r.prefix!, all: r.all });
}
log(`routed ${routed.length} held-out prompts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// 4. skill map and hit rates per budget
const prefix = skillAccuracy(stats.skillMap, routed, 'prefix');
const whole = skillAccuracy(stats.skillMap, routed, 'all');
const layer0 = skillAccuracy(restrictSkillMap(stats.skillMap, [0]), routed, 'prefix');
const sizes = edgeSizes(manifest);
const plans = SHARES.map((s) => plansAt(stats, sizes, s));
const rows = plans.flatMap((pl) => budgetRows(stats, pl, routed, prefix.chosen));
const checks = rows.filter((r) => r.domain !== 'all').map((r) => ({ share: r.share, domain: r.domain, ownProfile: r.ownProfile, global: r.global, ok: r.ownProfile > r.global }));

// 5. mixed precision: more experts at q4_0, and what that costs in held-out perplexity
const pplTokens = Number(o['ppl-tokens']);
const texts = Object.fromEntries(await Promise.all(DOMAINS.map(async (d) => [d, textTokens(p.model, await readFile(`${DEFAULT_OUT}/data/${d}.heldout.txt`, 'utf8')).slice(0, pplTokens)] as const)));
let mixedPrecision: HotsetResults['mixedPrecision'];
if (!o['no-mixed']) {
  const exact: Record<string, number> = {};
  for (const d of DOMAINS) exact[d] = (await perplexity(p.model, texts[d])).perplexity;
  const heldAll = routed.map((r) => r.all);
  const heldHit = (layers: number[][]) => {
    let h = 0;
    let n = 0;
    for (const c of heldAll) {
      const r = hitRates(c, layers);
      const total = c.tokens * a.topK * a.numLayers;
      h += r.overall * total;
      n += total;
    }
    return n ? h / n : 0;
  };
  const mrows: MixedRow[] = [];
  for (const pl of plans) {
    const mixed = planHotSet(stats.overall, sizes, { budgetBytes: pl.budgetBytes, mixedPrecision: {} });
    const ex = await MixedPrecisionExperts.create(p.model, fsSource(o.model), mixed.q4);
    const perplexityRow: MixedRow['perplexity'] = {};
    try {
      for (const d of DOMAINS) perplexityRow[d] = { exact: exact[d], mixed: (await perplexity({ ...p.model, expertExecutor: ex }, texts[d])).perplexity };
    } finally {
      ex.release();
    }
    mrows.push({
      share: pl.share,
      hitFull: heldHit(pl.global.layers),
      hitMixed: heldHit(mixed.layers),
      hotFull: pl.global.layers.flat().length,
      hotMixed: mixed.layers.flat().length,
      q4Experts: mixed.q4.flat().length,
      perplexity: perplexityRow,
    });
    log(`mixed precision at ${pl.share * 100}%: ${mixed.layers.flat().length} hot, ${mixed.q4.flat().length} at q4_0`);
  }
  mixedPrecision = { pplTokens, rows: mrows };
}

// 6. the cold policies' quality at each budget: perplexity with only the plan's experts resident
let quality: HotsetResults['quality'];
if (!o['no-quality']) {
  t0 = performance.now();
  quality = await measureQuality({
    modelDir: o.model,
    texts,
    plans: plans.map((pl) => ({ share: pl.share, global: pl.global.layers, profiles: Object.fromEntries(Object.entries(pl.profiles).map(([d, x]) => [d, x.layers])) })),
    log,
  });
  log(`quality measured in ${((performance.now() - t0) / 1000).toFixed(1)} s; remote vs all-local: max relative difference ${quality.remoteMaxRelDiff.toExponential(2)}`);
}

const tokensOf = (items: { domain: string; tokens: number }[]) => {
  const out: Record<string, { prompts: number; tokens: number }> = {};
  for (const it of items) {
    out[it.domain] ??= { prompts: 0, tokens: 0 };
    out[it.domain].prompts++;
    out[it.domain].tokens += it.tokens;
  }
  return out;
};
const strip = ({ chosen: _, ...rest }: typeof prefix) => rest;
const results: HotsetResults = {
  benchmark: 'hotset',
  date: new Date().toISOString(),
  command,
  model: {
    dir: o.model, name: manifest.name, numLayers: a.numLayers, numExperts: a.numExperts, topK: a.topK, hiddenSize: a.hiddenSize,
    expertFfnSize: a.expertFfnSize, vocabSize: a.vocabSize, expertQuant: manifest.quant.experts, fixedBytes: sizes.fixedBytes, expertBytes: totalExpertBytes(sizes),
  },
  calibration: Object.fromEntries(Object.entries(stats.domains).map(([d, c]) => [d, { prompts: c.prompts, tokens: c.tokens }])),
  heldout: tokensOf(routed.map((r) => ({ domain: r.domain, tokens: r.all.tokens }))),
  skillMap: { prefix: strip(prefix), whole: strip(whole), layer0: strip(layer0), chance: 1 / Object.keys(stats.domains).length },
  budgets: plans.map((pl) => ({
    share: pl.share,
    budgetBytes: pl.budgetBytes,
    global: { layers: pl.global.layers, expected: pl.global.expected.overall },
    profiles: Object.fromEntries(Object.entries(pl.profiles).map(([d, x]) => [d, { layers: x.layers, expected: x.expected.overall }])),
  })),
  rows,
  checks,
  ...(mixedPrecision ? { mixedPrecision } : {}),
  ...(quality ? { quality } : {}),
};
const md = renderMarkdown(results);
process.stdout.write(md);
const failed = checks.filter((c) => !c.ok);
log(`skill map ${prefix.correct}/${prefix.total}; profile beats global on its domain: ${checks.length - failed.length}/${checks.length}`);
if (!o['no-record']) {
  await writeFile('bench/results/hotset.json', JSON.stringify(results, null, 2) + '\n');
  await writeFile('bench/results/hotset.md', md);
  log('wrote bench/results/hotset.json and bench/results/hotset.md');
}
if (failed.length) process.exitCode = 1;

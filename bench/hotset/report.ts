// The hot-set benchmark's record (bench/results/hotset.json) and its Markdown (bench/results/hotset.md).
import type { BudgetRow, SkillResult } from './measure';
import type { QualityResults } from './quality';

export interface MixedRow {
  share: number;
  /** held-out hit rate of the global q8_0-only plan and of the mixed-precision plan */
  hitFull: number;
  hitMixed: number;
  hotFull: number; // experts hot
  hotMixed: number;
  q4Experts: number;
  /** held-out perplexity per domain: all experts as stored (= policy remote) vs the plan's q4_0 experts at q4_0 */
  perplexity: Record<string, { exact: number; mixed: number }>;
}

export interface HotsetResults {
  benchmark: 'hotset';
  date: string;
  command: string;
  model: {
    dir: string;
    name: string;
    numLayers: number;
    numExperts: number;
    topK: number;
    hiddenSize: number;
    expertFfnSize: number;
    vocabSize: number;
    expertQuant: string;
    fixedBytes: number;
    expertBytes: number;
  };
  calibration: Record<string, { prompts: number; tokens: number }>;
  heldout: Record<string, { prompts: number; tokens: number }>;
  /** prefix: all layers, first half of each prompt (the table's profiles); whole: the whole prompt;
   *  layer0: first half, layer 0's routing only (independent of the hot set and the cold policy) */
  skillMap: { prefix: Omit<SkillResult, 'chosen'>; whole: Omit<SkillResult, 'chosen'>; layer0: Omit<SkillResult, 'chosen'>; chance: number };
  budgets: { share: number; budgetBytes: number; global: { layers: number[][]; expected: number }; profiles: Record<string, { layers: number[][]; expected: number }> }[];
  rows: BudgetRow[];
  /** per budget and domain: the domain's own profile beats the global hot set on that domain's held-out prompts */
  checks: { share: number; domain: string; ownProfile: number; global: number; ok: boolean }[];
  mixedPrecision?: { pplTokens: number; rows: MixedRow[] };
  /** held-out perplexity under each cold policy with only a plan's experts resident */
  quality?: QualityResults;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

export function renderMarkdown(r: HotsetResults): string {
  const m = r.model;
  const domains = Object.keys(r.heldout);
  const out: string[] = [
    '# Hot-set planning: hit rate at the edge and skill-map accuracy',
    '',
    `Recorded ${r.date} with \`${r.command}\` (method: bench/hotset/README.md).`,
    '',
    `- Model: ${m.dir} (${m.name}): ${m.numLayers} layers x ${m.numExperts} experts, top-${m.topK}, hidden ${m.hiddenSize}, expert FFN ${m.expertFfnSize}, vocabulary ${m.vocabSize}; experts ${m.expertQuant}`,
    `- Edge bytes (heap: quants + f32 scales): trunk + shared experts ${mib(m.fixedBytes)}, routed experts ${mib(m.expertBytes)} in all`,
    `- Calibration (training split): ${domains.map((d) => `${d} ${r.calibration[d]?.prompts ?? 0} prompts / ${r.calibration[d]?.tokens ?? 0} tokens`).join(', ')}`,
    `- Held-out (last 5% of each domain): ${domains.map((d) => `${d} ${r.heldout[d].prompts} prompts / ${r.heldout[d].tokens} tokens`).join(', ')}`,
    '',
    '## Hit rate at the edge (held-out prompts)',
    '',
    'Share of (token, top-k slot) routings whose expert is hot, over all layers and every token of the held-out',
    'prompts. Budget = trunk + shared experts + the given share of the routed experts\' bytes. *Global*: one',
    'hot set planned from all calibration domains; *skill map*: each prompt served by the profile the skill map',
    'picked from the first half of its tokens; *own profile*: its true domain\'s profile (the skill map\'s ceiling);',
    '*no statistics*: what a hot set chosen blind serves on average (its share of the experts).',
    '',
    '| expert budget | domain | prompts | no statistics | global hot set | skill-map profile | own-domain profile | profile beats global |',
    '|---|---|---:|---:|---:|---:|---:|:---:|',
  ];
  for (const row of r.rows) {
    const beats = row.domain === 'all' ? '' : row.ownProfile > row.global ? 'yes' : '**no**';
    out.push(`| ${pct(row.share)} (${mib(row.budgetBytes)} in all) | ${row.domain} | ${row.prompts} | ${pct(row.share)} | ${pct(row.global)} | ${pct(row.skillMap)} | ${pct(row.ownProfile)} | ${beats} |`);
  }
  const s = r.skillMap;
  out.push(
    '',
    '## Skill map',
    '',
    `Nearest centroid (cosine, centered) over the prompt's per-layer expert histogram. Held-out prompts: ${s.prefix.total}; chance ${pct(s.chance)}.`,
    '',
    `- from the first half of each prompt's tokens: **${s.prefix.correct}/${s.prefix.total} = ${pct(s.prefix.accuracy)}**`,
    `- from the whole prompt: ${s.whole.correct}/${s.whole.total} = ${pct(s.whole.accuracy)}`,
    `- from the first half, layer 0's routing only (the same under every hot set and cold policy): ${s.layer0.correct}/${s.layer0.total} = ${pct(s.layer0.accuracy)}`,
    '',
    `| true \\ picked (first half) | ${domains.join(' | ')} |`,
    `|---|${domains.map(() => '---:').join('|')}|`,
    ...domains.map((d) => `| ${d} | ${domains.map((c) => s.prefix.confusion[d]?.[c] ?? 0).join(' | ')} |`),
  );
  if (r.mixedPrecision) {
    out.push(
      '',
      '## Mixed precision (hot experts re-quantized to q4_0 to fit more)',
      '',
      'Global hot set; the planner may keep an expert at q4_0 (re-quantized from its q8_0 object) at 0.99 of its',
      `value. Perplexity on the first ${r.mixedPrecision.pplTokens} held-out tokens of each domain, cold experts exact`,
      '(as under policy `remote`): *exact* = every expert as stored, *mixed* = the plan\'s q4_0 experts at q4_0.',
      'The Worker does not load q4_0 copies yet: this is what it would buy and cost.',
      '',
      `| expert budget | hot (q8_0 only) | hit rate | hot (mixed) | of them q4_0 | hit rate | ${domains.map((d) => `${d} ppl exact -> mixed`).join(' | ')} |`,
      `|---|---:|---:|---:|---:|---:|${domains.map(() => '---:').join('|')}|`,
    );
    for (const x of r.mixedPrecision.rows) {
      const ppl = domains.map((d) => {
        const p = x.perplexity[d];
        return p ? `${p.exact.toFixed(3)} -> ${p.mixed.toFixed(3)} (${((100 * (p.mixed - p.exact)) / p.exact).toFixed(2)}%)` : '';
      });
      out.push(`| ${pct(x.share)} | ${x.hotFull} | ${pct(x.hitFull)} | ${x.hotMixed} | ${x.q4Experts} | ${pct(x.hitMixed)} | ${ppl.join(' | ')} |`);
    }
  }
  if (r.quality) {
    const q = r.quality;
    const rel = (x: number, ref: number) => `${x.toFixed(3)} (${x >= ref ? '+' : ''}${((100 * (x - ref)) / ref).toFixed(1)}%)`;
    out.push(
      '',
      '## Quality of the cold policies (held-out perplexity)',
      '',
      `Perplexity on the first ${q.pplTokens} held-out tokens of each domain with only the planned experts resident, cold`,
      'picks handled as the Worker handles them (`ServedModel.beginExperts` -> `SplitExperts`, policies from',
      '`src/remote/policies.ts`): *remote* computes them on the real GPU backend over loopback (exact), *substitute*',
      'replaces each by the best-scoring resident expert the router did not pick, *drop* leaves it out and renormalises.',
      '*Global*: the global hot set for every domain; *own profile*: each domain under its own domain\'s profile (the',
      'skill map picks it for every held-out prompt here). In parentheses: the change from all experts resident.',
      `*remote* equals the all-local perplexity: largest relative difference ${q.remoteMaxRelDiff.toExponential(1)}.`,
      '',
      `| expert budget | hot set | experts hot | domain | all local | remote | substitute | drop |`,
      '|---|---|---:|---|---:|---:|---:|---:|',
    );
    for (const row of q.rows) {
      for (const d of domains) {
        const p = row.perplexity[d];
        if (!p) continue;
        const ref = q.allLocal[d];
        out.push(`| ${pct(row.share)} | ${row.set === 'global' ? 'global' : 'own profile'} | ${Number.isInteger(row.hot) ? row.hot : row.hot.toFixed(1)} | ${d} | ${ref.toFixed(3)} | ${p.remote.toFixed(3)} | ${rel(p.substitute, ref)} | ${rel(p.drop, ref)} |`);
      }
    }
  }
  out.push('', '## Planned hot sets (experts per layer)', '');
  for (const b of r.budgets) {
    out.push(`- ${pct(b.share)}: global ${fmtLayers(b.global.layers)}; ${Object.entries(b.profiles).map(([d, p]) => `${d} ${fmtLayers(p.layers)}`).join('; ')}`);
  }
  return out.join('\n') + '\n';
}

function fmtLayers(layers: number[][]): string {
  return layers.map((row, l) => `${l}:[${row.join(',')}]`).join(' ');
}

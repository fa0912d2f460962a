// The merge benchmark's table (bench/results/merge.md and the model card's section) from its JSON.
import type { FoldRecord } from '../../tools/merge/fold-layer';
import type { ModelScore } from './measure';

export interface MergeRow {
  experts: number;
  /** original, prune, merge, or a merge ablation */
  method: string;
  perplexity: ModelScore['perplexity'];
  sums: ModelScore['sums'];
  hotSet: ModelScore['hotSet'];
  /** seconds the merge-experts tool took */
  seconds: number;
  merged?: FoldRecord[];
}

export interface MergeResults {
  date: string;
  command: string;
  model: { dir: string; name: string; numExperts: number; topK: number };
  pplTokens: number | null;
  rows: MergeRow[];
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The table alone (what the model card embeds). */
export function mergeTable(r: MergeResults): string {
  const lines = [
    '| experts / layer | method | verse ppl | code ppl | arith ppl | sums right | 50% hot set: hit rate (experts) | original\'s 50% bytes: hit rate (experts) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const x of r.rows) {
    const p = (d: string) => x.perplexity[d].perplexity.toFixed(2);
    lines.push(`| ${x.experts} | ${x.method} | ${p('verse')} | ${p('code')} | ${p('arith')} | ${x.sums.correct} / ${x.sums.total} | ${pct(x.hotSet.half.hitRate)} (${x.hotSet.half.experts}) | ${pct(x.hotSet.originalHalf.hitRate)} (${x.hotSet.originalHalf.experts}) |`);
  }
  return lines.join('\n');
}

export function renderMerge(r: MergeResults): string {
  const tokens = r.rows[0] ? Object.entries(r.rows[0].perplexity).map(([d, v]) => `${d} ${v.tokens}`).join(', ') : '';
  return [
    `# Fewer experts: pruned vs merged (${r.model.name}, ${r.model.numExperts} experts, top-${r.model.topK})`,
    '',
    `Measured ${r.date} with \`${r.command}\`. Held-out perplexity over ${r.pplTokens ? `the first ${r.pplTokens} tokens of` : 'the whole of'} each domain's held-out split (tokens: ${tokens});`,
    'sums: the 100 held-out additions of the model card, greedy; hit rate: share of held-out prompts\' routings served by a global hot set planned',
    'from each model\'s own calibration statistics, at 50% of its own expert bytes and at 50% of the original\'s (the same memory for every row).',
    '',
    mergeTable(r),
    '',
    'Not measured: merged + fine-tuned (the optional short fine-tune was not run: no PyTorch on the machine that ran this).',
    '',
    'Merges (layer: removed expert -> kept expert, output cosine on the tokens it served):',
    '',
    ...r.rows.filter((x) => x.merged).map((x) => `- ${x.experts} experts: ${x.merged!.map((m) => `${m.layer}:${m.expert}->${m.into} (${m.similarity.toFixed(2)})`).join(', ')}`),
    '',
  ].join('\n');
}

// What the merge benchmark measures on one model folder: held-out perplexity per domain, the 100 held-out sums
// answered right (greedy, as the model card counts them), and the hit rate of a 50% hot set on held-out prompts.
import { readFile } from 'node:fs/promises';
import type { LocalModel } from '../../src/engine/load';
import { planHotSet } from '../../src/planning/planner';
import { edgeSizes, totalExpertBytes } from '../../src/planning/sizes';
import type { RoutingCounts, RoutingStats } from '../../src/routing/stats';
import { hitRates } from '../../src/routing/stats';
import { perplexity, textTokens } from '../../tools/perplexity';
import { loadProfiled, parsePrompts, profilePrompts, promptTokens, routeTokens } from '../../tools/profile';

export const DOMAINS = ['verse', 'code', 'arith'] as const;

export interface ModelScore {
  perplexity: Record<string, { tokens: number; perplexity: number }>;
  sums: { correct: number; total: number };
  /** share of held-out routings served by a global hot set planned from this model's calibration statistics */
  hotSet: {
    /** at 50% of this model's own expert bytes */
    half: { hitRate: number; experts: number };
    /** at 50% of the original model's expert bytes (the same memory for every row) */
    originalHalf: { hitRate: number; experts: number };
  };
  stats: RoutingStats;
}

async function sumsRight(model: LocalModel, file: string): Promise<{ correct: number; total: number }> {
  const sums = JSON.parse(await readFile(file, 'utf8')) as { prompt: string; answer: string }[];
  let correct = 0;
  for (const s of sums) {
    let text = '';
    const it = model.generate({ promptTokens: model.encode(s.prompt), maxTokens: 8, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: ['\n'] });
    for (let r = await it.next(); !r.done; r = await it.next()) text += r.value.text;
    if (text === s.answer) correct++;
  }
  return { correct, total: sums.length };
}

function heldHit(held: readonly RoutingCounts[], layers: number[][]): number {
  let h = 0;
  let n = 0;
  for (const c of held) {
    const all = c.counts.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
    h += hitRates(c, layers).overall * all;
    n += all;
  }
  return n ? h / n : 0;
}

export interface ScoreInputs {
  dataDir: string;
  calibration: string;
  heldout: string;
  /** expert bytes of the original model (the fixed-memory column) */
  originalExpertBytes: number;
  /** cut each held-out split to this many tokens (undefined: the whole split) */
  pplTokens?: number;
}

export async function scoreModel(dir: string, s: ScoreInputs): Promise<ModelScore> {
  const p = await loadProfiled(dir);
  const model = p.model;
  const ppl: ModelScore['perplexity'] = {};
  for (const d of DOMAINS) {
    const all = textTokens(model, await readFile(`${s.dataDir}/${d}.heldout.txt`, 'utf8'));
    const r = await perplexity(model, s.pplTokens ? all.slice(0, s.pplTokens) : all);
    ppl[d] = { tokens: r.tokens, perplexity: r.perplexity };
  }
  const sums = await sumsRight(model, `${s.dataDir}/sums.heldout.json`);
  const stats = await profilePrompts(p, parsePrompts(await readFile(s.calibration, 'utf8'), s.calibration));
  const held: RoutingCounts[] = [];
  for (const q of parsePrompts(await readFile(s.heldout, 'utf8'), s.heldout)) held.push((await routeTokens(p, promptTokens(p, q.text))).all);
  const sizes = edgeSizes(model.manifest);
  const at = (expertBytes: number) => {
    const plan = planHotSet(stats.overall, sizes, { budgetBytes: sizes.fixedBytes + Math.floor(expertBytes) });
    return { hitRate: heldHit(held, plan.layers), experts: plan.layers.flat().length };
  };
  return { perplexity: ppl, sums, hotSet: { half: at(0.5 * totalExpertBytes(sizes)), originalHalf: at(0.5 * s.originalExpertBytes) }, stats };
}

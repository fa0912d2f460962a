// The hot-set benchmark's arithmetic over routed held-out prompts: skill-map accuracy and, per budget,
// the share of routings a hot set serves at the edge (global set, the profile the skill map picks, and
// the prompt's own domain's profile). Pure functions over counts: no engine here.
import { planHotSet, type HotSetPlan } from '../../src/planning/planner';
import { totalExpertBytes, type EdgeSizes } from '../../src/planning/sizes';
import { classify, type SkillMap } from '../../src/routing/skill-map';
import { hitRates, type RoutingCounts, type RoutingStats } from '../../src/routing/stats';

/** One held-out prompt, routed: `prefix` (its first half) is what the skill map sees, `all` is scored. */
export interface RoutedPrompt {
  domain: string;
  prefix: RoutingCounts;
  all: RoutingCounts;
}

export interface SkillResult {
  correct: number;
  total: number;
  accuracy: number;
  /** confusion[true domain][chosen profile] = prompts */
  confusion: Record<string, Record<string, number>>;
  /** chosen[i] = the profile picked for prompt i */
  chosen: string[];
}

export function skillAccuracy(map: SkillMap, prompts: readonly RoutedPrompt[], use: 'prefix' | 'all' = 'prefix'): SkillResult {
  const confusion: Record<string, Record<string, number>> = {};
  const chosen: string[] = [];
  let correct = 0;
  for (const p of prompts) {
    const pick = classify(map, p[use].counts).profile;
    chosen.push(pick);
    confusion[p.domain] ??= {};
    confusion[p.domain][pick] = (confusion[p.domain][pick] ?? 0) + 1;
    if (pick === p.domain) correct++;
  }
  return { correct, total: prompts.length, accuracy: prompts.length ? correct / prompts.length : 0, confusion, chosen };
}

export interface BudgetRow {
  /** share of the routed experts' bytes available to hot experts */
  share: number;
  budgetBytes: number;
  domain: string; // a domain, or "all" for every held-out prompt together
  prompts: number;
  /** measured on held-out prompts: share of routings served at the edge */
  global: number;
  skillMap: number; // each prompt served by the profile the skill map chose from its prefix
  ownProfile: number; // each prompt served by its true domain's profile (the skill map's ceiling)
  /** what the planner expected from the calibration statistics for the global set on this domain */
  expectedGlobal: number;
}

export interface BudgetPlans {
  share: number;
  budgetBytes: number;
  global: HotSetPlan;
  profiles: Record<string, HotSetPlan>;
}

/** Plans at `share` of the expert bytes (on top of the trunk): one global hot set, one per domain. */
export function plansAt(stats: RoutingStats, sizes: EdgeSizes, share: number): BudgetPlans {
  const budgetBytes = sizes.fixedBytes + Math.floor(share * totalExpertBytes(sizes));
  const global = planHotSet(stats.overall, sizes, { budgetBytes });
  const profiles = Object.fromEntries(Object.entries(stats.domains).map(([d, c]) => [d, planHotSet(c, sizes, { budgetBytes })]));
  return { share, budgetBytes, global, profiles };
}

/** Hits and routings of one prompt under one hot set. */
function served(c: RoutingCounts, layers: readonly (readonly number[])[]): [number, number] {
  let hits = 0;
  let all = 0;
  c.counts.forEach((row, l) => {
    for (const v of row) all += v;
    for (const e of layers[l] ?? []) hits += row[e] ?? 0;
  });
  return [hits, all];
}

export function budgetRows(stats: RoutingStats, plans: BudgetPlans, prompts: readonly RoutedPrompt[], chosen: readonly string[]): BudgetRow[] {
  const groups = new Map<string, number[]>([['all', prompts.map((_, i) => i)]]);
  prompts.forEach((p, i) => groups.set(p.domain, [...(groups.get(p.domain) ?? []), i]));
  const rows: BudgetRow[] = [];
  for (const [domain, idx] of groups) {
    const acc = { global: [0, 0], skill: [0, 0], own: [0, 0] };
    const add = (k: keyof typeof acc, [h, a]: [number, number]) => {
      acc[k][0] += h;
      acc[k][1] += a;
    };
    for (const i of idx) {
      const p = prompts[i];
      add('global', served(p.all, plans.global.layers));
      add('skill', served(p.all, (plans.profiles[chosen[i]] ?? plans.global).layers));
      add('own', served(p.all, (plans.profiles[p.domain] ?? plans.global).layers));
    }
    const rate = ([h, a]: number[]) => (a ? h / a : 0);
    const calib = domain === 'all' ? stats.overall : stats.domains[domain];
    rows.push({
      share: plans.share,
      budgetBytes: plans.budgetBytes,
      domain,
      prompts: idx.length,
      global: rate(acc.global),
      skillMap: rate(acc.skill),
      ownProfile: rate(acc.own),
      expectedGlobal: calib ? hitRates(calib, plans.global.layers).overall : NaN,
    });
  }
  return rows;
}

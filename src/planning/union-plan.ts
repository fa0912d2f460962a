// Plans a hot set with profiles for an isolate that keeps them all resident: the top-level set and one
// profile per domain, each planned by the knapsack at the same per-profile budget, the largest one whose
// union (shared experts counted once) fits the budget. Used where the union is what memory holds: the
// Worker's `auto` (from routing-stats.json beside the model), POST /admin/hot-set/plan, and the dashboard.
import type { Manifest } from '../format/manifest';
import { hotSetDocument, type PlannedHotSet } from './hot-set-file';
import { planHotSet, type HotSetPlan } from './planner';
import { edgeSizes, totalExpertBytes, type EdgeSizes } from './sizes';
import { buildSkillMap, type SkillMap } from '../routing/skill-map';
import { hitRates, type RoutingStats } from '../routing/stats';

/** Knapsack table size in the Worker: 2 MB, whatever the model (sizes coarsen beyond it, within budget). */
export const WORKER_MAX_CELLS = 2_000_000;

export interface UnionPlanOptions {
  /** bytes the hot experts may take (HOT_BUDGET_MB: the trunk is not part of it) */
  hotBudgetBytes: number;
  /** also plan one profile per domain of the statistics (needs two domains with traffic) */
  profiles: boolean;
  maxCells?: number;
}

export interface UnionPlan {
  /** hot-set.json as the planner writes it (PUT /admin/hot-set takes it as is) */
  doc: PlannedHotSet;
  /** the experts resident: the top-level set and every profile */
  union: number[][];
  unionBytes: number;
  /** bytes each profile was planned within */
  perProfileBytes: number;
  /** expected share of routings served hot by the union, overall and for each domain's traffic */
  expected: { overall: number; perLayer: number[]; domains: Record<string, number> };
}

export function planUnion(stats: RoutingStats, manifest: Manifest, opts: UnionPlanOptions): UnionPlan {
  const sizes = edgeSizes(manifest);
  const room = Math.max(0, Math.min(opts.hotBudgetBytes, totalExpertBytes(sizes)));
  const domains = opts.profiles ? Object.keys(stats.domains).filter((d) => stats.domains[d].tokens > 0).sort() : [];
  const withProfiles = domains.length >= 2;
  const planAt = (r: number) => {
    const o = { budgetBytes: sizes.fixedBytes + r, maxCells: opts.maxCells ?? WORKER_MAX_CELLS };
    const global = planHotSet(stats.overall, sizes, o);
    const profiles: Record<string, HotSetPlan> = {};
    if (withProfiles) for (const d of domains) profiles[d] = planHotSet(stats.domains[d], sizes, o);
    return { global, profiles, ...unionOf(sizes, [global, ...Object.values(profiles)]) };
  };

  let best = planAt(room);
  let perProfile = room;
  if (best.bytes > room) {
    // the union grows with the per-profile budget: bisect on it, down to one expert's bytes
    const step = Math.max(1, Math.min(...sizes.expertBytes.flat()));
    let lo = 0;
    let hi = room;
    best = planAt(0);
    perProfile = 0;
    while (hi - lo > step / 4) {
      const mid = Math.floor((lo + hi) / 2);
      const p = planAt(mid);
      if (p.bytes <= room) {
        lo = mid;
        best = p;
        perProfile = mid;
      } else {
        hi = mid;
      }
    }
  }

  const skillMap: SkillMap | undefined = withProfiles ? (restrictTo(stats.skillMap, domains) ?? buildSkillMap(Object.fromEntries(domains.map((d) => [d, stats.domains[d]])))) : undefined;
  const doc = hotSetDocument({
    model: stats.model,
    from: 'overall',
    plan: best.global,
    ...(withProfiles ? { profiles: best.profiles, unionBytes: best.bytes } : {}),
    ...(skillMap ? { skillMap } : {}),
  });
  const served = hitRates(stats.overall, best.layers);
  return {
    doc,
    union: best.layers,
    unionBytes: best.bytes,
    perProfileBytes: perProfile,
    expected: { ...served, domains: Object.fromEntries(Object.entries(stats.domains).map(([d, c]) => [d, hitRates(c, best.layers).overall])) },
  };
}

/** The experts of every plan, once each, and their bytes. */
function unionOf(sizes: EdgeSizes, plans: readonly HotSetPlan[]): { layers: number[][]; bytes: number } {
  const layers = sizes.expertBytes.map((_, l) => [...new Set(plans.flatMap((p) => p.layers[l] ?? []))].sort((a, b) => a - b));
  const bytes = layers.reduce((s, row, l) => s + row.reduce((t, e) => t + sizes.expertBytes[l][e], 0), 0);
  return { layers, bytes };
}

/** The statistics' own skill map when it covers exactly these profiles. */
function restrictTo(map: SkillMap | undefined, names: readonly string[]): SkillMap | undefined {
  if (!map) return undefined;
  const have = Object.keys(map.centroids).sort();
  return have.length === names.length && have.every((n, i) => n === names[i]) ? map : undefined;
}

// Routing statistics: how often each router picked each expert, per layer, overall and per domain (or, in
// the Worker, per profile). One shape for the offline profiler and the Worker's counters, so the planner
// reads either; runtime-agnostic (no Node, no Workers APIs).
import { z } from 'zod';
import { SkillMapSchema } from './skill-map';

export const ROUTING_STATS_FORMAT = 'moe-edge/routing-stats/1';

/** counts[l][e] = (token, slot) routings of layer l that chose expert e; tokens = tokens seen per layer. */
export const RoutingCountsSchema = z.object({
  /** tokens that went through every layer (each contributes topK routings per layer) */
  tokens: z.number().int().nonnegative(),
  /** prompts (or requests) these tokens came from */
  prompts: z.number().int().nonnegative(),
  counts: z.array(z.array(z.number().int().nonnegative())),
});
export type RoutingCounts = z.infer<typeof RoutingCountsSchema>;

export const RoutingStatsSchema = z
  .object({
    format: z.literal(ROUTING_STATS_FORMAT),
    /** the manifest's model name: statistics of one model never plan another's hot set */
    model: z.string(),
    numLayers: z.number().int().positive(),
    numExperts: z.number().int().positive(),
    topK: z.number().int().positive(),
    overall: RoutingCountsSchema,
    /** domain (offline) or profile (Worker) -> its share of the counts */
    domains: z.record(z.string(), RoutingCountsSchema),
    /** nearest-centroid profile picker built from the domains (absent: fewer than two domains) */
    skillMap: SkillMapSchema.optional(),
  })
  .superRefine((s, ctx) => {
    const check = (c: RoutingCounts, path: (string | number)[]) => {
      if (c.counts.length !== s.numLayers) ctx.addIssue({ code: 'custom', path: [...path, 'counts'], message: `expected ${s.numLayers} layers, got ${c.counts.length}` });
      c.counts.forEach((row, l) => {
        if (row.length !== s.numExperts) ctx.addIssue({ code: 'custom', path: [...path, 'counts', l], message: `expected ${s.numExperts} experts, got ${row.length}` });
        const sum = row.reduce((a, b) => a + b, 0);
        if (sum !== c.tokens * s.topK) ctx.addIssue({ code: 'custom', path: [...path, 'counts', l], message: `layer ${l} has ${sum} routings, expected tokens x topK = ${c.tokens * s.topK}` });
      });
    };
    check(s.overall, ['overall']);
    for (const [d, c] of Object.entries(s.domains)) check(c, ['domains', d]);
  });
export type RoutingStats = z.infer<typeof RoutingStatsSchema>;

export class RoutingStatsError extends Error {
  override name = 'RoutingStatsError';
}

export function parseRoutingStats(json: unknown): RoutingStats {
  const r = RoutingStatsSchema.safeParse(json);
  if (!r.success) throw new RoutingStatsError(`invalid routing statistics: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export function emptyCounts(numLayers: number, numExperts: number): RoutingCounts {
  return { tokens: 0, prompts: 0, counts: Array.from({ length: numLayers }, () => new Array<number>(numExperts).fill(0)) };
}

/** a + b, as a new object (shapes must match). */
export function addCounts(a: RoutingCounts, b: RoutingCounts): RoutingCounts {
  if (a.counts.length !== b.counts.length || a.counts.some((row, l) => row.length !== b.counts[l].length)) {
    throw new RoutingStatsError(`cannot add routing counts of shapes ${shape(a)} and ${shape(b)}`);
  }
  return { tokens: a.tokens + b.tokens, prompts: a.prompts + b.prompts, counts: a.counts.map((row, l) => row.map((v, e) => v + b.counts[l][e])) };
}

/**
 * Statistics of the same model from several runs (or isolates) summed: overall and per domain.
 * The skill map is not summed (centroids do not add); the caller rebuilds it from the merged domains.
 */
export function mergeStats(a: RoutingStats, b: RoutingStats): Omit<RoutingStats, 'skillMap'> {
  if (a.model !== b.model) throw new RoutingStatsError(`statistics of different models: ${a.model} and ${b.model}`);
  if (a.numLayers !== b.numLayers || a.numExperts !== b.numExperts || a.topK !== b.topK) throw new RoutingStatsError('statistics of different architectures');
  const domains: Record<string, RoutingCounts> = { ...a.domains };
  for (const [d, c] of Object.entries(b.domains)) domains[d] = domains[d] ? addCounts(domains[d], c) : c;
  return { format: ROUTING_STATS_FORMAT, model: a.model, numLayers: a.numLayers, numExperts: a.numExperts, topK: a.topK, overall: addCounts(a.overall, b.overall), domains };
}

/** hits / routings of each layer, and overall, for a hot set given as layers[l] = expert ids. */
export function hitRates(c: RoutingCounts, hot: readonly (readonly number[])[]): { perLayer: number[]; overall: number } {
  let hits = 0;
  let all = 0;
  const perLayer = c.counts.map((row, l) => {
    const total = row.reduce((a, b) => a + b, 0);
    const h = (hot[l] ?? []).reduce((s, e) => s + (row[e] ?? 0), 0);
    hits += h;
    all += total;
    return total ? h / total : 0;
  });
  return { perLayer, overall: all ? hits / all : 0 };
}

function shape(c: RoutingCounts): string {
  return `${c.counts.length}x${c.counts[0]?.length ?? 0}`;
}

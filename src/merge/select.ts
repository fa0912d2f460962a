// Which experts a merged model keeps: `--keep` read against the architecture, then per layer the most routed
// experts of the routing statistics kept and the rest removed. Pure (no I/O); every bad input is a MergeInputError.
import type { Architecture } from '../format/manifest';
import type { RoutingStats } from '../routing/stats';

export class MergeInputError extends Error {
  override name = 'MergeInputError';
}

/**
 * Experts kept per layer from `--keep`: a whole number of experts (1 .. numExperts), or a fraction in (0, 1) of
 * them, rounded to the nearest expert. The result must leave the router at least topK experts to choose from.
 */
export function parseKeep(spec: string, a: Pick<Architecture, 'numExperts' | 'topK'>): number {
  const v = Number(spec);
  if (spec.trim() === '' || !Number.isFinite(v) || v <= 0) throw new MergeInputError(`--keep ${JSON.stringify(spec)}: expected a number of experts per layer (1-${a.numExperts}) or a fraction in (0, 1)`);
  let n: number;
  if (v < 1) n = Math.round(v * a.numExperts);
  else if (Number.isInteger(v)) n = v;
  else throw new MergeInputError(`--keep ${spec}: a count of experts must be a whole number (or give a fraction below 1)`);
  if (n > a.numExperts) throw new MergeInputError(`--keep ${spec}: the model has only ${a.numExperts} experts per layer`);
  if (n < 1) throw new MergeInputError(`--keep ${spec}: keeps no expert of ${a.numExperts}`);
  if (n < a.topK) throw new MergeInputError(`--keep ${spec}: ${n} experts per layer is fewer than the router's top-k (${a.topK}); each token needs ${a.topK} distinct experts`);
  return n;
}

/** Statistics describe this model: same name and routing shape, or the choice would be about another model's experts. */
export function checkStatsFor(stats: RoutingStats, modelName: string, a: Pick<Architecture, 'numLayers' | 'numExperts' | 'topK'>): void {
  if (stats.model !== modelName) throw new MergeInputError(`the routing statistics are of model "${stats.model}", not "${modelName}"`);
  if (stats.numLayers !== a.numLayers || stats.numExperts !== a.numExperts || stats.topK !== a.topK) {
    throw new MergeInputError(`the routing statistics are of ${stats.numLayers} layers x ${stats.numExperts} experts (top-${stats.topK}); the model has ${a.numLayers} x ${a.numExperts} (top-${a.topK})`);
  }
  if (stats.overall.tokens === 0) throw new MergeInputError('the routing statistics count no tokens');
}

/** Per layer: the kept experts (ascending ids: their new numbers are their ranks) and the removed ones. */
export interface KeepPlan {
  kept: number[][];
  removed: number[][];
}

/** Keeps the `keep` most routed experts of each layer (overall counts; ties to the lower id). */
export function chooseKept(stats: RoutingStats, keep: number): KeepPlan {
  const kept: number[][] = [];
  const removed: number[][] = [];
  for (const row of stats.overall.counts) {
    const order = row.map((_, e) => e).sort((x, y) => row[y] - row[x] || x - y);
    kept.push(order.slice(0, keep).sort((x, y) => x - y));
    removed.push(order.slice(keep).sort((x, y) => x - y));
  }
  return { kept, removed };
}

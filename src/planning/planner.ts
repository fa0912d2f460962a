// The hot-set planner: which experts to keep at the edge so that the largest expected share of routings
// is served there, within a byte budget that also pays for the trunk (and shared experts). A 0/1
// knapsack with value = how often the router picked the expert, size = its heap bytes; optionally mixed
// precision, where an expert may also be kept re-quantized to q4_0 (about half the bytes).
import { knapsack, type KnapsackOption } from './knapsack';
import type { EdgeSizes } from './sizes';
import { hitRates, type RoutingCounts } from '../routing/stats';

export interface PlanOptions {
  /** everything the edge may hold: trunk + shared experts + hot experts, bytes */
  budgetBytes: number;
  /** also consider each expert at q4_0; a q4_0 hit is worth `q4Value` of a full one (default 0.99, so
   *  full precision wins whenever it fits equally well) */
  mixedPrecision?: { q4Value?: number };
  /** knapsack table cells before sizes coarsen (default MAX_CELLS, 32 MB); the Worker plans with less memory */
  maxCells?: number;
}

export interface HotSetPlan {
  /** layers[l] = hot experts of layer l, ascending (q4_0 ones included) */
  layers: number[][];
  /** q4[l] = the hot experts of layer l kept at q4_0 (all empty without mixed precision) */
  q4: number[][];
  /** bytes of the hot experts, as planned (q4_0 ones at q4_0 size) */
  expertBytes: number;
  fixedBytes: number;
  budgetBytes: number;
  /** expected share of routings served at the edge, under the statistics planned from */
  expected: { perLayer: number[]; overall: number };
  /** false when the knapsack had to round sizes (very fine budgets on huge models): within budget, maybe not optimal */
  exact: boolean;
}

export class PlanError extends Error {
  override name = 'PlanError';
}

/**
 * Prior weight of an expert never seen in the statistics: left to the last, but still taken when the
 * budget has room (unseen traffic may use it), never at the cost of an expert that was seen.
 */
const UNSEEN = 1e-3;

export function planHotSet(stats: RoutingCounts, sizes: EdgeSizes, opts: PlanOptions): HotSetPlan {
  const L = sizes.expertBytes.length;
  if (stats.counts.length !== L || stats.counts.some((row, l) => row.length !== sizes.expertBytes[l].length)) {
    throw new PlanError(`statistics are ${stats.counts.length} layers x ${stats.counts[0]?.length ?? 0} experts, the model ${L} x ${sizes.expertBytes[0]?.length ?? 0}`);
  }
  const room = opts.budgetBytes - sizes.fixedBytes;
  if (room < 0) {
    throw new PlanError(`the budget (${mib(opts.budgetBytes)}) is smaller than the trunk and shared experts alone (${mib(sizes.fixedBytes)})`);
  }
  const q4Value = opts.mixedPrecision ? (opts.mixedPrecision.q4Value ?? 0.99) : 0;
  const keys: [number, number][] = [];
  const items: KnapsackOption[][] = [];
  stats.counts.forEach((row, l) =>
    row.forEach((count, e) => {
      const value = count + UNSEEN;
      const options: KnapsackOption[] = [{ size: sizes.expertBytes[l][e], value }];
      const q4 = sizes.expertBytesQ4[l]?.[e];
      if (opts.mixedPrecision && q4 != null) options.push({ size: q4, value: value * q4Value });
      keys.push([l, e]);
      items.push(options);
    }),
  );
  const r = knapsack(items, room, opts.maxCells);
  const layers: number[][] = Array.from({ length: L }, () => []);
  const q4: number[][] = Array.from({ length: L }, () => []);
  r.choice.forEach((k, i) => {
    if (k < 0) return;
    const [l, e] = keys[i];
    layers[l].push(e);
    if (k === 1) q4[l].push(e);
  });
  return { layers, q4, expertBytes: r.size, fixedBytes: sizes.fixedBytes, budgetBytes: opts.budgetBytes, expected: hitRates(stats, layers), exact: r.exact };
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

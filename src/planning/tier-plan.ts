// The tier planner: every routed expert gets exactly one place, the front isolate's leftover heap (its hot
// set), one of N expert-shard Workers, or the GPU backend, the most-picked closest to the front. Pure (sizes
// and routing counts in, a plan out); `npm run cli -- plan --shards` prints it and writes its files.
import { hitRates, type RoutingCounts } from '../routing/stats';

export interface TierPlanInput {
  /** expertBytes[l][e]: heap bytes of each routed expert (edgeSizes(manifest).expertBytes) */
  expertBytes: readonly (readonly number[])[];
  /** how often each expert was picked (routing statistics, overall); null: every expert equally often */
  counts: RoutingCounts | null;
  /** heap bytes the front may give hot experts (what its trunk and generations leave) */
  frontBytes: number;
  /** bytes of experts one shard may hold (shardExpertRoom) */
  shardBytes: number;
  /** shard Workers; 'all': the fewest whose shards hold every expert the front does not */
  shards: number | 'all';
  /** heap bytes of the embedding and output head when shard 0 holds them (taken from its room); 0: the front does */
  headBytes?: number;
}

export interface Tier {
  /** layers[l] = its experts of layer l, ascending */
  layers: number[][];
  experts: number;
  bytes: number;
  /** expected share of routed picks served here, overall and per layer (under the statistics planned from) */
  share: number;
  perLayerShare: number[];
}

export interface TierPlan {
  front: Tier & { budgetBytes: number };
  shards: Tier[];
  /** bytes of experts each shard may hold */
  shardBytes: number;
  gpu: Tier;
  /** where the picks the shares count came from */
  weights: 'statistics' | 'uniform';
  /**
   * Per layer, the busiest shard's picks over an even split of the shards' picks (1 = even: each call to
   * the shards waits for the slowest one); mean and worst over layers with shard traffic, 1 without shards.
   */
  balance: { mean: number; worst: number };
  /** the shard holding the embedding and output head (0), or null: the front holds it */
  headShard: number | null;
  /** shards: 'all' only; needed = the fewest shards for every expert (null: an expert is over shardBytes) */
  allAtEdge: { needed: number | null; limit: 'max-shards' | 'shard-budget' | null } | null;
}

export class TierPlanError extends Error {
  override name = 'TierPlanError';
}

/** Planning weight of an expert never picked: ordered last, by index, but still placed where there is room. */
const UNSEEN = 1e-3;
const FRONT = -1;
const GPU = -2;

/**
 * Plans the tiers. `maxShards` caps the 'all' mode (MAX_SHARDS in src/shard/layout.ts: the service
 * bindings a request may use); an explicit count above it is refused.
 */
export function planTiers(input: TierPlanInput, maxShards: number): TierPlan {
  const { expertBytes, counts } = input;
  const L = expertBytes.length;
  const E = expertBytes[0]?.length ?? 0;
  if (counts && (counts.counts.length !== L || counts.counts.some((row) => row.length !== E))) {
    throw new TierPlanError(`statistics are ${counts.counts.length} layers x ${counts.counts[0]?.length ?? 0} experts, the model ${L} x ${E}`);
  }
  if (input.shards !== 'all' && !(Number.isInteger(input.shards) && input.shards >= 0 && input.shards <= maxShards)) {
    throw new TierPlanError(`shards: 0..${maxShards} or all, got ${input.shards}`);
  }
  const picks: number[][] = counts ? counts.counts.map((row) => [...row]) : expertBytes.map((row) => row.map(() => 1));
  const order = hottestFirst(picks);
  const size = (l: number, e: number) => expertBytes[l][e];

  // the front first: the hottest experts while its leftover holds them
  const owner = new Int16Array(L * E).fill(GPU);
  let frontUsed = 0;
  for (const [l, e] of order) {
    if (frontUsed + size(l, e) > input.frontBytes) continue;
    frontUsed += size(l, e);
    owner[l * E + e] = FRONT;
  }
  const rest = order.filter(([l, e]) => owner[l * E + e] !== FRONT);
  const head = input.headBytes ?? 0;
  if (head > input.shardBytes) throw new TierPlanError(`the head (${(head / 2 ** 20).toFixed(1)} MiB) does not fit in a shard's ${(input.shardBytes / 2 ** 20).toFixed(1)} MiB of room`);

  let n: number;
  let allAtEdge: TierPlan['allAtEdge'] = null;
  if (input.shards === 'all') {
    const needed = fewestShards(rest, picks, size, input.shardBytes, maxShards, head);
    allAtEdge = { needed, limit: needed === null ? 'shard-budget' : needed > maxShards ? 'max-shards' : null };
    // over a limit: as many shards as help, the rest stays on the GPU
    const fitting = rest.filter(([l, e]) => size(l, e) <= input.shardBytes);
    n = Math.min(maxShards, needed ?? fewestShards(fitting, picks, size, input.shardBytes, maxShards, head)!);
  } else {
    n = input.shards;
  }
  if (head > 0 && n === 0) throw new TierPlanError('the head goes on shard 0, and the plan has no shards');
  const shardOf = fillShards(rest, picks, size, input.shardBytes, n, head);
  rest.forEach(([l, e], i) => (owner[l * E + e] = shardOf[i]));

  const weightsOf: RoutingCounts = { tokens: 0, prompts: 0, counts: picks };
  const tier = (who: number): Tier => {
    const layers = Array.from({ length: L }, (_, l) => Array.from({ length: E }, (_, e) => e).filter((e) => owner[l * E + e] === who));
    const bytes = layers.reduce((s, row, l) => s + sum(row.map((e) => size(l, e))), 0);
    const r = hitRates(weightsOf, layers);
    return { layers, experts: layers.reduce((s, row) => s + row.length, 0), bytes, share: r.overall, perLayerShare: r.perLayer };
  };
  const shards = Array.from({ length: n }, (_, i) => tier(i));
  return {
    front: { ...tier(FRONT), budgetBytes: input.frontBytes },
    shards,
    shardBytes: input.shardBytes,
    gpu: tier(GPU),
    weights: counts ? 'statistics' : 'uniform',
    headShard: head > 0 ? 0 : null,
    balance: balanceOf(shards, picks),
    allAtEdge,
  };
}

/** Every (layer, expert), most picked first; ties by expert then layer, so equal experts spread over the layers. */
function hottestFirst(picks: readonly (readonly number[])[]): [number, number][] {
  const all: [number, number][] = picks.flatMap((row, l) => row.map((_, e) => [l, e] as [number, number]));
  return all.sort((a, b) => picks[b[0]][b[1]] - picks[a[0]][a[1]] || a[1] - b[1] || a[0] - b[0]);
}

/**
 * Shard index for each expert of `experts` (hottest first), or GPU where no shard has room left. Each goes to
 * the shard with the fewest picks in its layer so far (then fewest overall, then fewest bytes): a layer's
 * picks spread over the shards, so a call to them waits on no single busy one.
 */
function fillShards(experts: readonly [number, number][], picks: readonly (readonly number[])[], size: (l: number, e: number) => number, room: number, n: number, head = 0): number[] {
  const used = new Array<number>(n).fill(0);
  if (n > 0) used[0] = head; // shard 0 holds the head when the front does not
  const load = new Array<number>(n).fill(0);
  const layerLoad = new Map<number, number[]>();
  return experts.map(([l, e]) => {
    const inLayer = layerLoad.get(l) ?? new Array<number>(n).fill(0);
    layerLoad.set(l, inLayer);
    const w = picks[l][e] + UNSEEN;
    let best = -1;
    for (let i = 0; i < n; i++) {
      if (used[i] + size(l, e) > room) continue;
      if (best < 0 || inLayer[i] < inLayer[best] || (inLayer[i] === inLayer[best] && (load[i] < load[best] || (load[i] === load[best] && used[i] < used[best])))) best = i;
    }
    if (best < 0) return GPU;
    used[best] += size(l, e);
    load[best] += w;
    inLayer[best] += w;
    return best;
  });
}

/** The fewest shards that leave nothing to the GPU; null when some expert alone is over a shard's room. */
function fewestShards(experts: readonly [number, number][], picks: readonly (readonly number[])[], size: (l: number, e: number) => number, room: number, maxShards: number, head = 0): number | null {
  if (experts.length === 0) return head > 0 ? 1 : 0;
  if (experts.some(([l, e]) => size(l, e) > room)) return null;
  const placesAll = (n: number) => fillShards(experts, picks, size, room, n, head).every((s) => s !== GPU);
  // no fewer than the bytes need; one per expert always holds them all
  const least = Math.max(1, Math.ceil((head + sum(experts.map(([l, e]) => size(l, e)))) / room));
  for (let n = least; n <= maxShards; n++) if (placesAll(n)) return n;
  // beyond the cap the count only tells how far over it is: bisect instead of trying each
  let lo = Math.max(least, maxShards + 1) - 1;
  let hi = experts.length + 1;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (placesAll(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

function balanceOf(shards: readonly Tier[], picks: readonly (readonly number[])[]): TierPlan['balance'] {
  const ratios: number[] = [];
  picks.forEach((row, l) => {
    const per = shards.map((s) => sum(s.layers[l].map((e) => row[e])));
    const total = sum(per);
    if (shards.length > 0 && total > 0) ratios.push(Math.max(...per) / (total / shards.length));
  });
  return ratios.length ? { mean: sum(ratios) / ratios.length, worst: Math.max(...ratios) } : { mean: 1, worst: 1 };
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

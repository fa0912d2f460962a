// The edge/backend split the tiers bench runs at each fraction: which experts go to how many shard Workers so that
// about `fraction` of all routed experts run at the edge, the rest on the backend. Planned by the tier planner
// (src/planning/tier-plan.ts) with each shard's room capped at an even share of the target, so the shards come out
// the same size instead of all full but the last.
import { planTiers, type TierPlan } from '../../src/planning/tier-plan';
import { MAX_SHARDS } from '../../src/shard/layout';

export interface EdgeSplitInput {
  /** expertBytes[l][e]: heap bytes of each routed expert (edgeSizes(manifest).expertBytes) */
  expertBytes: readonly (readonly number[])[];
  /** share of all routed experts to hold at the edge, 0..1 */
  fraction: number;
  /** bytes of experts one shard may hold at most (shardExpertRoom) */
  shardRoom: number;
  /** heap bytes the front gives hot experts (0: none, every edge expert on a shard) */
  frontBytes: number;
}

export interface EdgeSplit {
  plan: TierPlan;
  /** experts asked for at the edge (fraction of all, rounded) and placed there (front + shards) */
  target: number;
  edge: number;
}

export function edgeSplit(i: EdgeSplitInput): EdgeSplit {
  if (!(i.fraction >= 0 && i.fraction <= 1)) throw new RangeError(`fraction: 0..1, got ${i.fraction}`);
  const all = i.expertBytes.flat();
  const biggest = Math.max(0, ...all);
  const target = Math.round(i.fraction * all.length);
  // the front first (what fits of its room), then the shards for the rest of the target
  const frontOnly = planTiers({ expertBytes: i.expertBytes, counts: null, frontBytes: i.frontBytes, shardBytes: i.shardRoom, shards: 0 }, MAX_SHARDS);
  const front = Math.min(frontOnly.front.experts, target);
  const frontBytes = front === frontOnly.front.experts ? i.frontBytes : front * biggest;
  const onShards = target - front;
  const perShardMax = biggest > 0 ? Math.floor(i.shardRoom / biggest) : 0;
  if (onShards > 0 && perShardMax === 0) throw new RangeError(`a shard's room (${i.shardRoom} bytes) holds no expert of ${biggest} bytes`);
  const n = onShards === 0 ? 0 : Math.ceil(onShards / perShardMax);
  if (n > MAX_SHARDS) throw new RangeError(`${onShards} experts on shards need ${n} shards, over MAX_SHARDS (${MAX_SHARDS})`);
  const shardBytes = n === 0 ? i.shardRoom : Math.min(i.shardRoom, Math.ceil(onShards / n) * biggest);
  const plan = planTiers({ expertBytes: i.expertBytes, counts: null, frontBytes, shardBytes, shards: n }, MAX_SHARDS);
  return { plan, target, edge: plan.front.experts + plan.shards.reduce((s, t) => s + t.experts, 0) };
}

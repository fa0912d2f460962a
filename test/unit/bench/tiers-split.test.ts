// The tiers bench's edge split (bench/tiers/split.ts): each fraction puts that share of the experts at the edge,
// on shards of even size within their room, every expert in exactly one place.
import { describe, expect, it } from 'vitest';
import { edgeSplit } from '../../../bench/tiers/split';

const L = 24;
const E = 32;
const EXPERT = 982_016;
const sizes = Array.from({ length: L }, () => new Array<number>(E).fill(EXPERT));
const ROOM = 90 * EXPERT + 1000;

function placements(s: ReturnType<typeof edgeSplit>): number[] {
  const seen = new Array<number>(L * E).fill(0);
  for (const t of [s.plan.front, ...s.plan.shards, s.plan.gpu]) t.layers.forEach((row, l) => row.forEach((e) => seen[l * E + e]++));
  return seen;
}

describe('edgeSplit', () => {
  it('0: every expert on the backend, no shard', () => {
    const s = edgeSplit({ expertBytes: sizes, fraction: 0, shardRoom: ROOM, frontBytes: 0 });
    expect(s.plan.shards).toHaveLength(0);
    expect(s.edge).toBe(0);
    expect(s.plan.gpu.experts).toBe(L * E);
  });

  it('1: nothing left on the backend, the fewest shards the room allows', () => {
    const s = edgeSplit({ expertBytes: sizes, fraction: 1, shardRoom: ROOM, frontBytes: 0 });
    expect(s.plan.gpu.experts).toBe(0);
    expect(s.plan.shards).toHaveLength(Math.ceil((L * E) / 90));
    expect(placements(s).every((n) => n === 1)).toBe(true);
  });

  it('a quarter: that many experts at the edge, shards of even size, each within its room', () => {
    const s = edgeSplit({ expertBytes: sizes, fraction: 0.25, shardRoom: ROOM, frontBytes: 0 });
    expect(s.edge).toBe(192);
    const counts = s.plan.shards.map((t) => t.experts);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(s.plan.shards.every((t) => t.bytes <= ROOM)).toBe(true);
    expect(placements(s).every((n) => n === 1)).toBe(true);
  });

  it('the front\'s room counts toward the target; a front bigger than the target holds only the target', () => {
    const some = edgeSplit({ expertBytes: sizes, fraction: 0.5, shardRoom: ROOM, frontBytes: 40 * EXPERT });
    expect(some.plan.front.experts).toBe(40);
    expect(some.edge - 384).toBeGreaterThanOrEqual(0);
    expect(some.edge - 384).toBeLessThan(some.plan.shards.length);
    const big = edgeSplit({ expertBytes: sizes, fraction: 0.01, shardRoom: ROOM, frontBytes: 100 * EXPERT });
    expect(big.plan.front.experts).toBe(8);
    expect(big.plan.shards).toHaveLength(0);
  });
});

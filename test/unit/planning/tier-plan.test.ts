// The tier planner (src/planning/tier-plan.ts): every expert lands in exactly one tier, no tier goes over its
// bytes, the most-picked experts sit closest to the front, a layer's picks spread evenly over the shards,
// "all at the edge" finds the fewest shards (or names the limit that binds), and its layout is one the front
// and the shards accept (parseShardLayout).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/engine/sampler';
import { parseManifest } from '../../../src/format/manifest';
import { edgeSizes } from '../../../src/planning/sizes';
import { shardExpertRoom, SHARD_JS_BYTES, shardScratchBytes } from '../../../src/planning/shard-memory';
import { planTiers, TierPlanError, type TierPlan, type TierPlanInput } from '../../../src/planning/tier-plan';
import type { RoutingCounts } from '../../../src/routing/stats';
import { MAX_SHARDS, NO_SHARD, parseShardLayout, shardLayoutDocument, shardNames } from '../../../src/shard/layout';

const KiB = 1024;

/** Zipf-like picks per layer (a few experts take most), shuffled per layer; each layer sums to tokens x topK. */
function skewedCounts(L: number, E: number, seed: number, tokens = 1000, topK = 2): RoutingCounts {
  const rand = seededRandom(seed);
  const counts = Array.from({ length: L }, () => {
    const w = Array.from({ length: E }, (_, i) => 1 / (i + 1) ** 1.1).sort(() => rand() - 0.5);
    const total = tokens * topK;
    const s = w.reduce((a, b) => a + b, 0);
    const row = w.map((x) => Math.floor((x / s) * total));
    row[0] += total - row.reduce((a, b) => a + b, 0);
    return row;
  });
  return { tokens, prompts: 10, counts };
}

const sameSize = (L: number, E: number, bytes: number) => Array.from({ length: L }, () => new Array<number>(E).fill(bytes));

/** tier of every (l, e): 'front', shard index, or 'gpu'. */
function owners(plan: TierPlan, L: number, E: number): (string | number)[][] {
  const at: (string | number)[][] = Array.from({ length: L }, () => new Array(E).fill(undefined));
  const put = (layers: number[][], who: string | number) =>
    layers.forEach((row, l) =>
      row.forEach((e) => {
        expect(at[l][e], `${l}/${e} placed twice`).toBeUndefined();
        at[l][e] = who;
      }),
    );
  put(plan.front.layers, 'front');
  plan.shards.forEach((s, i) => put(s.layers, i));
  put(plan.gpu.layers, 'gpu');
  return at;
}

const bytesOf = (layers: number[][], size: number[][]) => layers.reduce((s, row, l) => s + row.reduce((t, e) => t + size[l][e], 0), 0);

describe('planTiers', () => {
  it('puts every expert in exactly one tier and keeps every tier within its bytes (random sizes, budgets, counts)', () => {
    const rand = seededRandom(3);
    for (let trial = 0; trial < 60; trial++) {
      const L = 1 + Math.floor(rand() * 6);
      const E = 2 + Math.floor(rand() * 14);
      const expertBytes = Array.from({ length: L }, () => Array.from({ length: E }, () => KiB * (1 + Math.floor(rand() * 8))));
      const input: TierPlanInput = {
        expertBytes,
        counts: trial % 3 === 0 ? null : skewedCounts(L, E, trial),
        frontBytes: Math.floor(rand() * 10 * KiB),
        shardBytes: KiB + Math.floor(rand() * 20 * KiB),
        shards: trial % 4 === 0 ? 'all' : Math.floor(rand() * 5),
      };
      const plan = planTiers(input, MAX_SHARDS);
      const at = owners(plan, L, E);
      expect(at.flat().every((w) => w !== undefined)).toBe(true);
      expect(plan.front.bytes).toBe(bytesOf(plan.front.layers, expertBytes));
      expect(plan.front.bytes).toBeLessThanOrEqual(input.frontBytes);
      for (const s of plan.shards) {
        expect(s.bytes).toBe(bytesOf(s.layers, expertBytes));
        expect(s.bytes).toBeLessThanOrEqual(input.shardBytes);
      }
      if (input.shards !== 'all') expect(plan.shards).toHaveLength(input.shards);
      const shares = plan.front.share + plan.shards.reduce((a, s) => a + s.share, 0) + plan.gpu.share;
      expect(shares).toBeCloseTo(1, 9);
    }
  });

  it('puts the most-picked experts closest: front, then shards, then the GPU', () => {
    const L = 4;
    const E = 16;
    const counts = skewedCounts(L, E, 11);
    const plan = planTiers({ expertBytes: sameSize(L, E, 64 * KiB), counts, frontBytes: 5 * 64 * KiB, shardBytes: 10 * 64 * KiB, shards: 3 }, MAX_SHARDS);
    const picks = (layers: number[][]) => layers.flatMap((row, l) => row.map((e) => counts.counts[l][e]));
    const front = picks(plan.front.layers);
    const shards = plan.shards.flatMap((s) => picks(s.layers));
    const gpu = picks(plan.gpu.layers);
    expect([front.length, shards.length, gpu.length]).toEqual([5, 30, 64 - 35]);
    expect(Math.min(...front)).toBeGreaterThanOrEqual(Math.max(...shards));
    expect(Math.min(...shards)).toBeGreaterThanOrEqual(Math.max(...gpu));
    // the shares are the statistics' own: hits over all picks
    const all = counts.counts.flat().reduce((a, b) => a + b, 0);
    expect(plan.front.share).toBeCloseTo(front.reduce((a, b) => a + b, 0) / all, 12);
    expect(plan.gpu.share).toBeCloseTo(gpu.reduce((a, b) => a + b, 0) / all, 12);
  });

  it('spreads each layer\'s picks over the shards, not just their bytes', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const L = 6;
      const E = 32;
      const counts = skewedCounts(L, E, seed, 5000, 4);
      const plan = planTiers({ expertBytes: sameSize(L, E, 64 * KiB), counts, frontBytes: 0, shardBytes: 48 * 64 * KiB, shards: 4 }, MAX_SHARDS);
      expect(plan.gpu.experts).toBe(0); // 4 x 48 = every expert: balance is all that is left to choose
      for (let l = 0; l < L; l++) {
        const per = plan.shards.map((s) => s.layers[l].reduce((a, e) => a + counts.counts[l][e], 0));
        const even = per.reduce((a, b) => a + b, 0) / per.length;
        // a layer's hottest expert alone takes ~24% of its picks here, so an even 25% each cannot always be met
        expect(Math.max(...per) / even, `seed ${seed} layer ${l}: ${per}`).toBeLessThan(1.25);
      }
      const overall = plan.shards.map((s) => s.share);
      expect(Math.max(...overall) / (overall.reduce((a, b) => a + b, 0) / 4)).toBeLessThan(1.1);
      expect(plan.balance.worst).toBeLessThan(1.25);
    }
  });

  it('"all at the edge": the fewest shards that leave nothing on the GPU', () => {
    const L = 8;
    const E = 12;
    const expertBytes = Array.from({ length: L }, (_, l) => Array.from({ length: E }, (_, e) => KiB * (1 + ((l + e) % 3))));
    for (const [frontBytes, shardBytes] of [[0, 20 * KiB], [7 * KiB, 33 * KiB], [30 * KiB, 50 * KiB]]) {
      const input = { expertBytes, counts: skewedCounts(L, E, shardBytes), frontBytes, shardBytes };
      const plan = planTiers({ ...input, shards: 'all' }, MAX_SHARDS);
      const needed = plan.allAtEdge!.needed!;
      expect(plan.allAtEdge!.limit).toBeNull();
      expect(plan.shards).toHaveLength(needed);
      expect(plan.gpu.experts).toBe(0);
      expect(planTiers({ ...input, shards: needed - 1 }, MAX_SHARDS).gpu.experts).toBeGreaterThan(0);
    }
  });

  it('"all at the edge" names the limit that binds: MAX_SHARDS, or an expert bigger than a shard', () => {
    const expertBytes = sameSize(4, 8, 10 * KiB);
    const overMax = planTiers({ expertBytes, counts: null, frontBytes: 0, shardBytes: 10 * KiB, shards: 'all' }, 5);
    expect(overMax.allAtEdge).toEqual({ needed: 32, limit: 'max-shards' });
    expect(overMax.shards).toHaveLength(5); // as many as allowed, the rest on the GPU
    expect(overMax.gpu.experts).toBe(32 - 5);
    const tooBig = planTiers({ expertBytes, counts: null, frontBytes: 0, shardBytes: 9 * KiB, shards: 'all' }, 5);
    expect(tooBig.allAtEdge).toEqual({ needed: null, limit: 'shard-budget' });
    expect(tooBig.gpu.experts).toBe(32);
    const frontHoldsAll = planTiers({ expertBytes, counts: null, frontBytes: 320 * KiB, shardBytes: 10 * KiB, shards: 'all' }, 5);
    expect(frontHoldsAll.allAtEdge).toEqual({ needed: 0, limit: null });
    expect(frontHoldsAll.front.experts).toBe(32);
  });

  it('without statistics, every expert counts the same and the shares are shares of experts', () => {
    const plan = planTiers({ expertBytes: sameSize(3, 8, KiB), counts: null, frontBytes: 3 * KiB, shardBytes: 6 * KiB, shards: 2 }, MAX_SHARDS);
    expect(plan.weights).toBe('uniform');
    expect(plan.front.share).toBeCloseTo(3 / 24, 12);
    expect(plan.shards.map((s) => s.share)).toEqual([6 / 24, 6 / 24]);
    expect(plan.gpu.share).toBeCloseTo(9 / 24, 12);
  });

  it('refuses statistics of another shape and more shards than allowed', () => {
    const expertBytes = sameSize(2, 4, KiB);
    expect(() => planTiers({ expertBytes, counts: skewedCounts(3, 4, 1), frontBytes: 0, shardBytes: KiB, shards: 1 }, MAX_SHARDS)).toThrow(TierPlanError);
    expect(() => planTiers({ expertBytes, counts: null, frontBytes: 0, shardBytes: KiB, shards: MAX_SHARDS + 1 }, MAX_SHARDS)).toThrow(/0\.\.16 or all/);
  });

  it('its layout document parses with parseShardLayout and names each expert\'s shard', () => {
    const manifest = parseManifest(JSON.parse(readFileSync('models/default/manifest.json', 'utf8')));
    const { numLayers: L, numExperts: E } = manifest.architecture;
    const sizes = edgeSizes(manifest);
    const one = sizes.expertBytes[0][0];
    const plan = planTiers({ expertBytes: sizes.expertBytes, counts: skewedCounts(L, E, 9), frontBytes: 3 * one, shardBytes: 5 * one, shards: 3 }, MAX_SHARDS);
    const doc = shardLayoutDocument(manifest.name, plan.shards.map((s, i) => ({ ...shardNames('moe-edge', i), layers: s.layers })));
    const layout = parseShardLayout(JSON.parse(JSON.stringify(doc)), manifest.name, manifest.architecture);
    const at = owners(plan, L, E);
    for (let l = 0; l < L; l++) {
      for (let e = 0; e < E; e++) {
        expect(layout.owner[l * E + e], `${l}/${e}`).toBe(typeof at[l][e] === 'number' ? at[l][e] : NO_SHARD);
      }
    }
  });
});

describe('shard memory', () => {
  it('a shard\'s expert room is its budget less its JS heap and one call\'s scratch', () => {
    const a = { hiddenSize: 1024, expertFfnSize: 512, topK: 8 };
    expect(shardExpertRoom(a, 100 * 2 ** 20)).toBe(100 * 2 ** 20 - SHARD_JS_BYTES - shardScratchBytes(a));
    // a prefill chunk's (token, slot) outputs dominate: 64 x 8 x 1024 f32
    expect(shardScratchBytes(a)).toBeGreaterThan(64 * 8 * 1024 * 4);
    expect(shardScratchBytes({ ...a, topK: 16 })).toBeGreaterThan(shardScratchBytes(a));
  });
});

describe('the head on shard 0', () => {
  it('takes its bytes from shard 0, is named in the layout, and counts in the fewest shards for all at the edge', () => {
    const L = 4;
    const E = 8;
    const bytes = sameSize(L, E, 100 * KiB);
    const base: TierPlanInput = { expertBytes: bytes, counts: null, frontBytes: 0, shardBytes: 800 * KiB, shards: 'all' };
    const without = planTiers(base, MAX_SHARDS);
    const withHead = planTiers({ ...base, headBytes: 450 * KiB }, MAX_SHARDS);
    expect(without.headShard).toBeNull();
    expect(withHead.headShard).toBe(0);
    expect(withHead.shards[0].bytes + 450 * KiB).toBeLessThanOrEqual(800 * KiB);
    // 32 experts x 100 KiB over 800 KiB shards: 4 without the head, one more with it
    expect(without.allAtEdge?.needed).toBe(4);
    expect(withHead.allAtEdge?.needed).toBe(5);
    expect(withHead.gpu.experts).toBe(0);
    const doc = shardLayoutDocument('m', withHead.shards.map((s, i) => ({ ...shardNames('w', i), layers: s.layers, head: withHead.headShard === i })));
    expect(parseShardLayout(doc, 'm', { numLayers: L, numExperts: E }).headShard).toBe(0);
  });

  it('refuses a head that does not fit a shard, or a plan without shards to hold it', () => {
    const base: TierPlanInput = { expertBytes: sameSize(2, 4, KiB), counts: null, frontBytes: 0, shardBytes: 64 * KiB, shards: 1 };
    expect(() => planTiers({ ...base, headBytes: 65 * KiB }, MAX_SHARDS)).toThrow(TierPlanError);
    expect(() => planTiers({ ...base, shards: 0, headBytes: KiB }, MAX_SHARDS)).toThrow(/no shards/);
  });
});

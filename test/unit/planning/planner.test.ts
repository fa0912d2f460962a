// The hot-set planner: the knapsack finds the best hot set (checked against brute force on small cases, with
// and without mixed precision), never exceeds the budget (trunk included), and its hot-set.json is one the
// Worker's hot-set code accepts within the same number of bytes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../../src/format/manifest';
import { resolveHotSet } from '../../../src/hotset/resolve';
import { parseHotSetValue } from '../../../src/hotset/spec';
import { HotSetDocSchema } from '../../../src/hotset/store';
import { hotSetDocument, PlannedHotSetSchema } from '../../../src/planning/hot-set-file';
import { knapsack, type KnapsackOption } from '../../../src/planning/knapsack';
import { planHotSet, PlanError } from '../../../src/planning/planner';
import { edgeSizes, totalExpertBytes, type EdgeSizes } from '../../../src/planning/sizes';
import type { RoutingCounts } from '../../../src/routing/stats';
import { seededRandom } from '../../../src/engine/sampler';

/** The best value over every way to pick one option (or none) per item, by enumeration. */
function bruteForce(items: KnapsackOption[][], capacity: number): number {
  let best = 0;
  const walk = (i: number, size: number, value: number) => {
    if (size > capacity) return;
    if (i === items.length) {
      best = Math.max(best, value);
      return;
    }
    walk(i + 1, size, value);
    for (const o of items[i]) walk(i + 1, size + o.size, value + o.value);
  };
  walk(0, 0, 0);
  return best;
}

const total = (items: KnapsackOption[][], choice: number[]) =>
  choice.reduce((s, k, i) => (k < 0 ? s : { size: s.size + items[i][k].size, value: s.value + items[i][k].value }), { size: 0, value: 0 });

describe('knapsack', () => {
  it('matches brute force on small random cases and stays within capacity', () => {
    const rand = seededRandom(42);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rand() * 9);
      const mixed = trial % 2 === 1;
      const items: KnapsackOption[][] = Array.from({ length: n }, () => {
        const size = 8 * (1 + Math.floor(rand() * 12)); // shared factor 8, like expert byte sizes
        const value = Math.floor(rand() * 100);
        return mixed ? [{ size, value }, { size: Math.max(8, size / 2), value: value * 0.9 }] : [{ size, value }];
      });
      const capacity = Math.floor(rand() * 8 * 40);
      const r = knapsack(items, capacity);
      const t = total(items, r.choice);
      expect(r.exact).toBe(true);
      expect(t.size).toBeLessThanOrEqual(capacity);
      expect(t.size).toBe(r.size);
      expect(r.value).toBeCloseTo(bruteForce(items, capacity), 9);
    }
  });

  it('a table too big for memory rounds sizes up: still within capacity, flagged inexact', () => {
    const rand = seededRandom(7);
    const items = Array.from({ length: 12 }, () => [{ size: 1 + Math.floor(rand() * 1000), value: rand() }]);
    const r = knapsack(items, 3000, 12 * 50); // 50 units of capacity for sizes of gcd 1
    expect(r.exact).toBe(false);
    expect(total(items, r.choice).size).toBeLessThanOrEqual(3000);
    expect(r.value).toBeGreaterThan(0.6 * bruteForce(items, 3000));
  });
});

// 2 layers x 4 experts with unequal sizes, a 100-byte trunk
const sizes: EdgeSizes = { fixedBytes: 100, expertBytes: [[40, 40, 80, 40], [40, 80, 40, 40]], expertBytesQ4: [[24, 24, 48, 24], [24, 48, 24, 24]] };
const counts: RoutingCounts = { tokens: 50, prompts: 5, counts: [[10, 50, 30, 10], [45, 5, 40, 10]] };

describe('planHotSet', () => {
  it('spends the budget left after the trunk on the most-routed bytes, and reports expected hit rates', () => {
    const plan = planHotSet(counts, sizes, { budgetBytes: 100 + 160 });
    // 160 bytes: layer-0 expert 1 (50), layer-1 experts 0 (45) and 2 (40) = 120 bytes, + one more 40-byte expert
    expect(plan.expertBytes).toBeLessThanOrEqual(160);
    expect(plan.layers[1]).toEqual(expect.arrayContaining([0, 2]));
    expect(plan.layers[0]).toContain(1);
    const hits = plan.layers.reduce((s, row, l) => s + row.reduce((a, e) => a + counts.counts[l][e], 0), 0);
    expect(hits).toBe(145); // the brute-force best: 50 + 45 + 40 + 10
    expect(plan.expected.overall).toBeCloseTo(145 / 200, 12);
    expect(plan.expected.perLayer[1]).toBeCloseTo(85 / 100, 12);
    expect(plan.q4.flat()).toEqual([]);
  });

  it('the trunk counts against the budget; a budget below it is an error', () => {
    expect(() => planHotSet(counts, sizes, { budgetBytes: 99 })).toThrow(PlanError);
    expect(planHotSet(counts, sizes, { budgetBytes: 100 }).layers).toEqual([[], []]);
    for (let budget = 100; budget <= 600; budget += 20) expect(planHotSet(counts, sizes, { budgetBytes: budget }).expertBytes).toBeLessThanOrEqual(budget - 100);
  });

  it('unseen experts fill spare budget last; everything fits -> everything hot', () => {
    const plan = planHotSet({ ...counts, counts: [[0, 0, 0, 100], [100, 0, 0, 0]] }, sizes, { budgetBytes: 10_000 });
    expect(plan.layers).toEqual([[0, 1, 2, 3], [0, 1, 2, 3]]);
  });

  it('mixed precision keeps experts at q4_0 only when that serves more', () => {
    const roomy = planHotSet(counts, sizes, { budgetBytes: 100 + 400, mixedPrecision: {} });
    expect(roomy.q4.flat()).toEqual([]); // everything fits at full precision
    const tight = planHotSet(counts, sizes, { budgetBytes: 100 + 96, mixedPrecision: {} });
    expect(tight.q4.flat().length).toBeGreaterThan(0);
    expect(tight.expected.overall).toBeGreaterThan(planHotSet(counts, sizes, { budgetBytes: 100 + 96 }).expected.overall);
    expect(tight.expertBytes).toBeLessThanOrEqual(96);
  });
});

describe('hot-set.json from the planner', () => {
  const manifest = parseManifest(JSON.parse(readFileSync('models/default/manifest.json', 'utf8')));
  const s = edgeSizes(manifest);
  const { numLayers: L, numExperts: E, topK } = manifest.architecture;
  const rand = seededRandom(3);
  const stats: RoutingCounts = { tokens: 1000, prompts: 10, counts: Array.from({ length: L }, () => Array.from({ length: E }, () => 0)) };
  for (let l = 0; l < L; l++) for (let i = 0; i < 1000 * topK; i++) stats.counts[l][Math.floor(rand() ** 2 * E)]++;

  it('sizes come from the manifest: the trunk object, and every expert as the Worker holds it', () => {
    expect(s.fixedBytes).toBeGreaterThan(0);
    expect(totalExpertBytes(s)).toBeGreaterThan(0);
    expect(s.expertBytes).toHaveLength(L);
    expect(s.expertBytes[0]).toHaveLength(E);
  });

  it("is a document the Worker's hot-set store parses, and resolves within the same expert bytes", () => {
    const budgetBytes = s.fixedBytes + Math.floor(totalExpertBytes(s) / 2);
    const plan = planHotSet(stats, s, { budgetBytes });
    const doc = hotSetDocument({ model: manifest.name, from: 'overall', plan, profiles: { a: plan } });
    expect(PlannedHotSetSchema.parse(doc)).toEqual(doc);
    const stored = HotSetDocSchema.parse(JSON.parse(JSON.stringify(doc)));
    expect(stored.model).toBe(manifest.name);
    const resolved = resolveHotSet(parseHotSetValue({ layers: stored.layers }), manifest, plan.expertBytes); // HOT_BUDGET_MB = the plan's expert bytes
    expect(resolved.bytes).toBe(plan.expertBytes);
    expect(resolved.layers).toEqual(plan.layers);
  });
});

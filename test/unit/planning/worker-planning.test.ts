// The Worker's side of planning, without a Worker: the recorder keeps only whole forward passes, the tally
// sums generations per profile in the profiler's schema, the union planner keeps every profile resident
// within the budget, the profile picker decides from layer 0 before that batch's experts run, and PUT bodies
// with profiles resolve to their union (over budget: 400 naming "profiles").
import { describe, expect, it } from 'vitest';
import type { ExpertBatch, ExpertExecutor } from '../../../src/engine/experts';
import { tensorNames, type Manifest } from '../../../src/format/manifest';
import { resolveProfiled } from '../../../src/hotset/profiles';
import { expertHeapBytes } from '../../../src/hotset/resolve';
import { HotSetError, parseHotSetPut } from '../../../src/hotset/spec';
import { ProfilePicker } from '../../../src/routing/pick-profile';
import { RoutingRecorder } from '../../../src/routing/record';
import { buildSkillMap } from '../../../src/routing/skill-map';
import { parseRoutingStats, ROUTING_STATS_FORMAT, type RoutingCounts, type RoutingStats } from '../../../src/routing/stats';
import { RoutingTally } from '../../../src/routing/tally';
import { planUnion } from '../../../src/planning/union-plan';

const L = 2;
const E = 8;
const K = 2;
// 2 layers x 8 experts of 64x64 q8_0 matrices, with a trunk
const manifest = (() => {
  const tensors: Record<string, unknown> = { 'token_embd.weight': { object: 'trunk.bin', offset: 0, bytes: 4352, dtype: 'q8_0', shape: [64, 64] } };
  const entry = { object: 'x', offset: 0, bytes: 4352, dtype: 'q8_0', shape: [64, 64] };
  for (let l = 0; l < L; l++) for (let e = 0; e < E; e++) for (const n of [tensorNames.expertGate(l, e), tensorNames.expertUp(l, e), tensorNames.expertDown(l, e)]) tensors[n] = entry;
  return { name: 'm', architecture: { numLayers: L, numExperts: E, topK: K }, tensors } as unknown as Manifest;
})();
const ONE = expertHeapBytes(manifest, 0, 0);

/** An executor that records the layers it was asked for and can fail at one. */
class Probe implements ExpertExecutor {
  layers: number[] = [];
  constructor(private readonly failAt = -1) {}
  run(b: ExpertBatch): void {
    this.layers.push(b.layer);
    if (b.layer === this.failAt) throw new Error('cold expert failed');
  }
}

const batch = (layer: number, experts: number[][]): ExpertBatch => ({ layer, x: 0, scores: 0, out: 0, nTok: experts.length, routes: experts.map((row) => row.map((expert) => ({ expert, weight: 1 / row.length }))) });

/** Traffic of two kinds: "low" routes to experts 0..3 of every layer, "high" to 4..7. */
function twoDomains(): RoutingStats {
  const counts = (lo: boolean): RoutingCounts => ({ tokens: 100, prompts: 5, counts: Array.from({ length: L }, () => Array.from({ length: E }, (_, e) => ((e < 4) === lo ? 50 : 0))) });
  const domains = { low: counts(true), high: counts(false) };
  return {
    format: ROUTING_STATS_FORMAT, model: 'm', numLayers: L, numExperts: E, topK: K,
    overall: { tokens: 200, prompts: 10, counts: domains.low.counts.map((r, l) => r.map((v, e) => v + domains.high.counts[l][e])) },
    domains,
  };
}

describe('RoutingRecorder', () => {
  it('counts a forward pass when it reaches the last layer; a pass that fails midway adds nothing', async () => {
    const probe = new Probe(1);
    const rec = new RoutingRecorder(probe, L, E);
    rec.run(batch(0, [[0, 1], [2, 3]]));
    expect(() => rec.run(batch(1, [[4, 5], [6, 7]]))).toThrow('cold expert failed'); // counted: the router asked
    expect(rec.snapshot()).toMatchObject({ tokens: 2 });
    rec.run(batch(0, [[0, 1]])); // the next pass fails before its last layer
    expect(rec.snapshot().tokens).toBe(2);
    expect(rec.snapshot().counts[0]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(probe.layers).toEqual([0, 1, 0]);
  });
});

describe('RoutingTally', () => {
  it('sums generations overall and per profile in the profiler\'s schema', () => {
    const t = new RoutingTally();
    expect(t.stats()).toBeNull();
    const m = { name: 'm', numLayers: L, numExperts: E, topK: K };
    const c = (e: number): RoutingCounts => ({ tokens: 1, prompts: 1, counts: Array.from({ length: L }, () => Array.from({ length: E }, (_, i) => (i === e || i === e + 1 ? 1 : 0))) });
    t.add(m, 'code', c(0));
    t.add(m, 'code', c(2));
    t.add(m, null, c(4));
    const s = parseRoutingStats(t.stats()!);
    expect(s.overall).toMatchObject({ tokens: 3, prompts: 3 });
    expect(s.domains.code.counts[0]).toEqual([1, 1, 1, 1, 0, 0, 0, 0]);
    expect(t.byProfile().map(([p, x]) => [p, x.tokens])).toEqual([['code', 2], [null, 1]]);
    t.add({ ...m, name: 'other' }, null, c(0)); // another model under the same id: counting starts again
    expect(t.stats()!.overall.tokens).toBe(1);
  });
});

describe('planUnion', () => {
  it('without profiles: the knapsack over the overall counts within the budget', () => {
    const p = planUnion(twoDomains(), manifest, { hotBudgetBytes: 4 * ONE, profiles: false });
    expect(p.unionBytes).toBe(4 * ONE);
    expect(p.doc.profiles).toBeUndefined();
    expect(p.expected.overall).toBeCloseTo(0.25, 9); // every seen expert is as popular as the next
  });

  it('with profiles: one per domain, each as large as the budget allows with all of them resident', () => {
    const p = planUnion(twoDomains(), manifest, { hotBudgetBytes: 8 * ONE, profiles: true });
    expect(Object.keys(p.doc.profiles!).sort()).toEqual(['high', 'low']);
    expect(p.unionBytes).toBeLessThanOrEqual(8 * ONE);
    for (const [name, prof] of Object.entries(p.doc.profiles!)) {
      for (const [l, ids] of Object.entries(prof.layers)) {
        for (const e of ids) expect(p.union[Number(l)]).toContain(e);
        expect(ids.every((e) => (name === 'low' ? e < 4 : e >= 4))).toBe(true);
      }
    }
    expect(Object.keys(p.doc.skillMap!.centroids).sort()).toEqual(['high', 'low']);
    // the planned document is what PUT /admin/hot-set takes
    const h = resolveProfiled(parseHotSetPut(p.doc), manifest, 8 * ONE);
    expect(h.bytes).toBe(p.unionBytes);
    expect([...h.tier!.profiles.keys()].sort()).toEqual(['high', 'low']);
  });
});

describe('ProfilePicker', () => {
  it('picks from the prompt\'s layer-0 routing once the whole prompt has been routed there, before those experts run', () => {
    const map = buildSkillMap(twoDomains().domains)!;
    const picks: string[] = [];
    const probe = new Probe();
    const seenAtPick: number[] = [];
    const picker = new ProfilePicker(probe, map, L, E, 3, (p) => {
      picks.push(p);
      seenAtPick.push(probe.layers.length);
    });
    picker.run(batch(0, [[5, 6], [4, 7]])); // two of the prompt's three tokens
    picker.run(batch(1, [[0, 1], [0, 1]])); // later layers do not count
    expect(picks).toEqual([]);
    picker.run(batch(0, [[6, 5]]));
    expect(picks).toEqual(['high']);
    expect(seenAtPick).toEqual([2]); // before the third batch reached the experts
    picker.run(batch(0, [[0, 1]])); // decode steps: no second pick
    expect(picks).toEqual(['high']);
  });
});

describe('PUT bodies with profiles', () => {
  const doc = () => planUnion(twoDomains(), manifest, { hotBudgetBytes: 8 * ONE, profiles: true }).doc;
  const error = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e as HotSetError;
    }
    throw new Error('no error');
  };

  it('the union of the set and its profiles must fit the budget', () => {
    const wide = { layers: { '0': [0] }, profiles: { a: { layers: { '0': [1, 2, 3], '1': [1] } }, b: { layers: { '1': [2, 3] } } } };
    const h = resolveProfiled(parseHotSetPut(wide), manifest, 7 * ONE);
    expect(h.layers).toEqual([[0, 1, 2, 3], [1, 2, 3]]);
    expect(h.tier!.base.layers).toEqual([[0], []]);
    const e = error(() => resolveProfiled(parseHotSetPut(wide), manifest, 6 * ONE));
    expect(e).toMatchObject({ code: 'hot_set_over_budget', param: 'profiles' });
  });

  it.each([
    ['a bad profile name', () => ({ ...doc(), profiles: { 'a b': { layers: {} } } }), 'profiles.a b'],
    ['a profile without layers', () => ({ ...doc(), profiles: { ...doc().profiles, low: { experts: [] } } }), 'profiles.low.layers'],
    ['a centroid without its profile', () => ({ ...doc(), profiles: { low: doc().profiles!.low } }), 'skillMap.centroids.high'],
    ['an unknown key', () => ({ ...doc(), extra: 1 }), 'extra'],
  ])('%s -> 400 naming it', (_, body, param) => {
    expect(error(() => resolveProfiled(parseHotSetPut(body()), manifest, null))).toMatchObject({ status: 400, param });
  });

  it('presets and {"layers"} still parse as before', () => {
    expect(parseHotSetPut({ preset: 'none' })).toMatchObject({ spec: { kind: 'none' }, profiles: null });
    expect(parseHotSetPut({ layers: { '0': [1] } }).spec.kind).toBe('explicit');
    expect(error(() => parseHotSetPut({ preset: 'all', layers: {} }))).toMatchObject({ param: 'layers' });
  });
});

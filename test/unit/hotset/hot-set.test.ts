// HOT_EXPERTS and PUT /admin/hot-set bodies: parsed strictly, resolved against the model's manifest and the
// memory budget.
import { describe, expect, it } from 'vitest';
import { tensorNames, type Manifest } from '../../../src/format/manifest';
import { expertHeapBytes, hotSetLayersJson, resolveHotSet } from '../../../src/hotset/resolve';
import { HotSetError, parseHotExperts, parseHotSetBody } from '../../../src/hotset/spec';

// The parts of a manifest a hot set is checked against: 2 layers x 8 experts of 64x64 q8_0 matrices.
const manifest = (() => {
  const tensors: Record<string, unknown> = {};
  const entry = { object: 'x', offset: 0, bytes: 4352, dtype: 'q8_0', shape: [64, 64] };
  for (let l = 0; l < 2; l++) {
    for (let e = 0; e < 8; e++) for (const name of [tensorNames.expertGate(l, e), tensorNames.expertUp(l, e), tensorNames.expertDown(l, e)]) tensors[name] = entry;
  }
  return { name: 'test', architecture: { numLayers: 2, numExperts: 8 }, tensors } as unknown as Manifest;
})();

const resolve = (v: string, budget: number | null = null) => resolveHotSet(parseHotExperts(v), manifest, budget);

describe('HOT_EXPERTS', () => {
  it('all, none, unset', () => {
    expect(resolve('all').layers).toEqual([[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7]]);
    expect(resolve('').count).toBe(16);
    expect(resolve('none')).toMatchObject({ layers: [[], []], count: 0, bytes: 0 });
  });

  it('a share takes a rotating window per layer, so every expert is hot somewhere', () => {
    expect(resolve('50%').layers).toEqual([[0, 1, 2, 3], [4, 5, 6, 7]]);
    expect(resolve('25%').layers).toEqual([[0, 1], [2, 3]]);
    expect(resolve('100%').count).toBe(16);
  });

  it('explicit JSON; unlisted layers have no hot experts; ids are sorted', () => {
    const h = resolve('{"layers": {"1": [5, 1]}}');
    expect(h.layers).toEqual([[], [1, 5]]);
    expect(h.bytes).toBe(2 * expertHeapBytes(manifest, 1, 1));
    expect(hotSetLayersJson(h)).toEqual({ '0': [], '1': [1, 5] });
  });

  it('auto fills HOT_BUDGET_MB round-robin over the layers (all when there is no budget)', () => {
    const one = expertHeapBytes(manifest, 0, 0);
    const h = resolve('auto', 5 * one);
    expect(h.count).toBe(5);
    expect(h.bytes).toBeLessThanOrEqual(5 * one);
    expect(h.layers.map((l) => l.length)).toEqual([3, 2]);
    expect(resolve('auto').count).toBe(16);
  });

  it.each([
    ['{"layers": {"0": [8]}}', /unknown expert 8 in layer 0/, 'layers.0[0]'],
    ['{"layers": {"2": [0]}}', /unknown layer 2/, 'layers.2'],
    ['{"layers": {"0": [1, 1]}}', /listed twice/, 'layers.0[1]'],
    ['{"layers": {"x": [1]}}', /invalid key/i, 'layers.x'],
    ['{"layers": {"0": [1.5]}}', /invalid hot set/, 'layers.0.0'],
    ['{"layer": {}}', /invalid hot set at layers/, 'layers'],
    ['{"layers": ', /not valid JSON/, null],
    ['half', /invalid hot set/, null],
    ['150%', /invalid hot set/, null],
  ])('%s is refused', (v, message, param) => {
    const e = (() => { try { resolve(v); } catch (err) { return err; } })() as HotSetError;
    expect(e).toBeInstanceOf(HotSetError);
    expect(e.status).toBe(400);
    expect(e.message).toMatch(message);
    expect(e.param).toBe(param);
  });

  it('over the budget is refused with its own code', () => {
    const one = expertHeapBytes(manifest, 0, 0);
    expect(() => resolve('50%', 7 * one)).toThrow(expect.objectContaining({ code: 'hot_set_over_budget', status: 400 }));
    expect(resolve('50%', 8 * one).count).toBe(8);
  });
});

describe('PUT /admin/hot-set body', () => {
  it('takes {"layers": ...} or {"preset": ...}', () => {
    expect(parseHotSetBody({ layers: { '0': [1] } })).toMatchObject({ kind: 'explicit' });
    expect(parseHotSetBody({ preset: '50%' })).toEqual({ kind: 'share', percent: 50 });
    expect(parseHotSetBody({ preset: 'none' })).toEqual({ kind: 'none' });
    expect(() => parseHotSetBody({ preset: 'all', layers: {} })).toThrow(HotSetError);
    expect(() => parseHotSetBody({ preset: 3 })).toThrow(HotSetError);
    expect(() => parseHotSetBody({ layers: { '0': [1] }, extra: true })).toThrow(HotSetError);
  });
});

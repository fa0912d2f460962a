// Which experts merge-experts keeps: --keep read against the architecture (bad values are errors naming the
// limit), the statistics checked to be this model's, the most routed experts of each layer kept.
import { describe, expect, it } from 'vitest';
import { checkStatsFor, chooseKept, MergeInputError, parseKeep } from '../../../src/merge/select';
import { ROUTING_STATS_FORMAT, type RoutingStats } from '../../../src/routing/stats';

const arch = { numLayers: 2, numExperts: 8, topK: 2 };

function stats(counts: number[][], model = 'm'): RoutingStats {
  const tokens = counts[0].reduce((a, b) => a + b, 0) / 2;
  const c = { tokens, prompts: 1, counts };
  return { format: ROUTING_STATS_FORMAT, model, numLayers: counts.length, numExperts: counts[0].length, topK: 2, overall: c, domains: {} };
}

describe('parseKeep', () => {
  it('takes a count of experts or a fraction of them', () => {
    expect(parseKeep('6', arch)).toBe(6);
    expect(parseKeep('8', arch)).toBe(8);
    expect(parseKeep('0.5', arch)).toBe(4);
    expect(parseKeep('0.75', arch)).toBe(6);
  });

  it.each([
    ['9', /only 8 experts/],
    ['0', /expected a number/],
    ['-2', /expected a number/],
    ['abc', /expected a number/],
    ['', /expected a number/],
    ['1', /fewer than the router's top-k \(2\)/],
    ['0.1', /fewer than the router's top-k|keeps no expert/],
    ['5.5', /whole number/],
  ])('refuses --keep %j', (spec, message) => {
    expect(() => parseKeep(spec, arch)).toThrow(MergeInputError);
    expect(() => parseKeep(spec, arch)).toThrow(message);
  });
});

describe('checkStatsFor', () => {
  const s = stats([[4, 3, 2, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 3]]);
  it('accepts statistics of this model', () => expect(() => checkStatsFor(s, 'm', arch)).not.toThrow());
  it('refuses statistics of another model, or of another shape', () => {
    expect(() => checkStatsFor(s, 'other', arch)).toThrow(/of model "m", not "other"/);
    expect(() => checkStatsFor(s, 'm', { ...arch, numExperts: 6 })).toThrow(/8 experts .* the model has 2 x 6/);
    expect(() => checkStatsFor(s, 'm', { ...arch, numLayers: 3 })).toThrow(MergeInputError);
  });
});

describe('chooseKept', () => {
  it('keeps the most routed experts of each layer, ids ascending, ties to the lower id', () => {
    const s = stats([[4, 3, 2, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 3]]);
    expect(chooseKept(s, 3)).toEqual({ kept: [[0, 1, 2], [0, 1, 7]], removed: [[3, 4, 5, 6, 7], [2, 3, 4, 5, 6]] });
  });
});

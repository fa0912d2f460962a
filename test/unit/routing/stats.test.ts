// Routing statistics: the schema rejects counts that do not add up, merging sums runs, and the recording
// executor counts every (token, slot) routing of a real forward pass without changing its output.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTextModel, type LocalModel } from '../../../src/engine/load';
import { fsSource } from '../../../src/store/source-fs';
import { RoutingRecorder } from '../../../src/routing/record';
import { emptyCounts, mergeStats, parseRoutingStats, ROUTING_STATS_FORMAT, RoutingStatsError, type RoutingStats } from '../../../src/routing/stats';
import { makeKernels } from '../../../tools/kernels-node';
import { scoreTokens } from '../../../tools/score';

const stats = (counts: number[][], tokens: number, domain = 'a'): RoutingStats => ({
  format: ROUTING_STATS_FORMAT,
  model: 'm',
  numLayers: counts.length,
  numExperts: counts[0].length,
  topK: 2,
  overall: { tokens, prompts: 1, counts },
  domains: { [domain]: { tokens, prompts: 1, counts } },
});

describe('routing statistics', () => {
  it('parse; a layer whose routings are not tokens x topK is rejected with its path', () => {
    expect(parseRoutingStats(stats([[1, 3], [2, 2]], 2)).overall.tokens).toBe(2);
    expect(() => parseRoutingStats(stats([[1, 3], [2, 1]], 2))).toThrow(/overall\.counts\.1: layer 1 has 3 routings/);
    expect(() => parseRoutingStats(stats([[1, 3, 0], [2, 2]], 2))).toThrow(RoutingStatsError);
    expect(() => parseRoutingStats({ ...stats([[4]], 2), format: 'x' })).toThrow(/format/);
  });

  it('merge sums overall and per domain; different models do not merge', () => {
    const m = mergeStats(stats([[1, 3], [2, 2]], 2, 'a'), stats([[2, 0], [1, 1]], 1, 'b'));
    expect(m.overall).toEqual({ tokens: 3, prompts: 2, counts: [[3, 3], [3, 3]] });
    expect(Object.keys(m.domains)).toEqual(['a', 'b']);
    const again = mergeStats(parseRoutingStats(m), stats([[2, 0], [1, 1]], 1, 'b'));
    expect(again.domains.b).toEqual({ tokens: 2, prompts: 2, counts: [[4, 0], [2, 2]] });
    expect(() => mergeStats(stats([[2]], 1), { ...stats([[2]], 1), model: 'other' })).toThrow(/different models/);
  });
});

describe('RoutingRecorder', () => {
  let model: LocalModel;
  beforeAll(async () => {
    model = await loadTextModel(fsSource('models/default'), await makeKernels());
  });

  it('counts topK routings per token and layer and leaves the logits unchanged', async () => {
    const a = model.manifest.architecture;
    const tokens = model.encode('def add(a, b):\n    return a + b\n').slice(0, 40);
    const plain = await scoreTokens(model, tokens);
    const recorder = new RoutingRecorder(model.expertExecutor, a.numLayers, a.numExperts);
    const recorded = await scoreTokens({ ...model, expertExecutor: recorder }, tokens);
    const c = recorder.take();
    expect(c.tokens).toBe(tokens.length);
    for (const row of c.counts) expect(row.reduce((x, y) => x + y, 0)).toBe(tokens.length * a.topK);
    expect(recorded.at(-1)).toEqual(plain.at(-1));
    expect(recorder.snapshot()).toEqual(emptyCounts(a.numLayers, a.numExperts)); // take() starts again
  });
});

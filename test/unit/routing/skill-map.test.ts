// The skill map's arithmetic: centroids are the domains' routing histograms, a prompt goes to the nearest one
// by centered cosine, and a map restricted to some layers ignores the others.
import { describe, expect, it } from 'vitest';
import { buildSkillMap, classify, histogram, restrictSkillMap } from '../../../src/routing/skill-map';

const domains = {
  code: { tokens: 10, prompts: 2, counts: [[16, 2, 1, 1], [10, 10, 0, 0]] },
  verse: { tokens: 10, prompts: 2, counts: [[1, 1, 2, 16], [0, 0, 10, 10]] },
};

describe('skill map', () => {
  const map = buildSkillMap(domains)!;

  it('centroids are per-layer shares; the center is their mean', () => {
    expect(map.centroids.code[0]).toEqual(histogram(domains.code.counts)[0]);
    expect(map.center[1]).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(buildSkillMap({ code: domains.code })).toBeUndefined(); // one domain: nothing to choose
  });

  it('a prompt goes to the domain whose routing it resembles', () => {
    expect(classify(map, [[3, 1, 0, 0], [2, 1, 1, 0]]).profile).toBe('code');
    expect(classify(map, [[0, 0, 1, 3], [0, 1, 1, 2]]).profile).toBe('verse');
    const c = classify(map, [[3, 1, 0, 0], [2, 1, 1, 0]]);
    expect(c.scores.code).toBeGreaterThan(c.scores.verse);
  });

  it('restricted to layer 1, layer 0 no longer counts', () => {
    const prompt = [[4, 0, 0, 0], [0, 0, 2, 2]]; // layer 0 says code, layer 1 says verse
    expect(classify(restrictSkillMap(map, [0]), prompt).profile).toBe('code');
    expect(classify(restrictSkillMap(map, [1]), prompt).profile).toBe('verse');
  });
});

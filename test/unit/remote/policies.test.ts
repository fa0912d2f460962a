// The local cold policies: what replaces a cold expert (substitute) or how the rest is renormalised (drop).
import { describe, expect, it } from 'vitest';
import { planFallback, type ColdPick } from '../../../src/remote/policies';

// token 0 chose experts 6 (0.7) and 1 (0.3); token 1 chose 7 (0.6) and 6 (0.4); resident: 0, 1, 2, 3
const routes = [
  [{ expert: 6, weight: 0.7 }, { expert: 1, weight: 0.3 }],
  [{ expert: 7, weight: 0.6 }, { expert: 6, weight: 0.4 }],
];
const resident = [0, 1, 2, 3];
//               e:  0    1    2    3    4    5    6    7
const scores = [[0.1, 0.5, 0.05, 0.3, 0.0, 0.0, 0.9, 0.0], [0.2, 0.1, 0.4, 0.4, 0.0, 0.0, 0.5, 0.8]];
const cold: ColdPick[] = [
  { token: 0, slot: 0, expert: 6 },
  { token: 1, slot: 0, expert: 7 },
  { token: 1, slot: 1, expert: 6 },
];

describe('substitute', () => {
  it('takes the best-scoring resident expert the token did not choose, keeping the routing weight', () => {
    const plan = planFallback({ policy: 'substitute', routes, cold, resident, scores: (t) => scores[t]! });
    // token 0: 1 is already chosen, best of the rest is 3; token 1: 2 and 3 tie at 0.4 -> lower id first
    expect(plan.jobs).toEqual([
      { token: 0, slot: 0, expert: 3 },
      { token: 1, slot: 0, expert: 2 },
      { token: 1, slot: 1, expert: 3 },
    ]);
    expect(plan.zero).toEqual([]);
    expect(plan.scale).toEqual([]);
  });

  it('drops (and renormalises) a slot when no unused resident expert is left', () => {
    const plan = planFallback({ policy: 'substitute', routes, cold: cold.slice(0, 1), resident: [1], scores: (t) => scores[t]! });
    expect(plan.jobs).toEqual([]);
    expect(plan.zero).toEqual([{ token: 0, slot: 0 }]);
    expect(plan.scale).toEqual([{ token: 0, slot: 1, factor: 1 / 0.3 }]);
  });
});

describe('drop', () => {
  it('zeroes cold slots and scales the hot ones to the old weight sum', () => {
    const plan = planFallback({ policy: 'drop', routes, cold: cold.slice(0, 1), resident, scores: (t) => scores[t]! });
    expect(plan.jobs).toEqual([]);
    expect(plan.zero).toEqual([{ token: 0, slot: 0 }]);
    expect(plan.scale).toEqual([{ token: 0, slot: 1, factor: 1 / 0.3 }]);
  });

  it('a token whose picks are all cold gets its best resident expert with the whole weight', () => {
    const plan = planFallback({ policy: 'drop', routes, cold: cold.slice(1), resident, scores: (t) => scores[t]! });
    expect(plan.jobs).toEqual([{ token: 1, slot: 0, expert: 2 }]);
    expect(plan.zero).toEqual([{ token: 1, slot: 1 }]);
    expect(plan.scale).toEqual([{ token: 1, slot: 0, factor: 1 / 0.6 }]);
  });

  it('a layer with no resident expert contributes nothing for such a token', () => {
    const plan = planFallback({ policy: 'drop', routes, cold: cold.slice(1), resident: [], scores: (t) => scores[t]! });
    expect(plan.jobs).toEqual([]);
    expect(plan.zero).toEqual([{ token: 1, slot: 0 }, { token: 1, slot: 1 }]);
    expect(plan.scale).toEqual([]);
  });
});

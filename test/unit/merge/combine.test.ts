// Folding experts: the assignment is optimal, alignment undoes a neuron permutation and the sign flip that
// leaves a SwiGLU expert's function unchanged, and merging an expert with such a copy of itself gives it back.
import { describe, expect, it } from 'vitest';
import { minCostAssignment } from '../../../src/merge/assignment';
import { alignTo, mergeInto, weightedAverage, type ExpertFloats } from '../../../src/merge/combine';
import { seededRandom } from '../../../src/engine/sampler';

function permutations(n: number): number[][] {
  if (n === 1) return [[0]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

describe('minCostAssignment', () => {
  it('finds the cheapest assignment (brute force over 6 x 6)', () => {
    const rand = seededRandom(3);
    for (let trial = 0; trial < 20; trial++) {
      const n = 6;
      const cost = Float64Array.from({ length: n * n }, () => Math.round(rand() * 100) - 50);
      const total = (a: ArrayLike<number>) => Array.from(a).reduce((s, j, i) => s + cost[i * n + j], 0);
      const best = Math.min(...permutations(n).map(total));
      const got = minCostAssignment(cost, n);
      expect(new Set(got).size).toBe(n);
      expect(total(got)).toBe(best);
    }
  });
});

function randomExpert(I: number, H: number, seed: number): ExpertFloats {
  const rand = seededRandom(seed);
  const r = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
  return { gate: r(I * H), up: r(I * H), down: r(H * I) };
}

/** Neuron i of the result is neuron perm[i] of e, with up and down negated where flip[i]. */
function shuffled(e: ExpertFloats, perm: number[], flip: boolean[], I: number, H: number): ExpertFloats {
  const out: ExpertFloats = { gate: new Float32Array(I * H), up: new Float32Array(I * H), down: new Float32Array(H * I) };
  perm.forEach((j, i) => {
    const s = flip[i] ? -1 : 1;
    for (let h = 0; h < H; h++) {
      out.gate[i * H + h] = e.gate[j * H + h];
      out.up[i * H + h] = s * e.up[j * H + h];
      out.down[h * I + i] = s * e.down[h * I + j];
    }
  });
  return out;
}

describe('alignTo and mergeInto', () => {
  const I = 24;
  const H = 16;
  const base = randomExpert(I, H, 1);
  const rand = seededRandom(9);
  const perm = Array.from({ length: I }, (_, i) => i).sort(() => rand() - 0.5);
  const flip = Array.from({ length: I }, () => rand() < 0.5);
  const copy = shuffled(base, perm, flip, I, H);

  it('undoes a permutation of the neurons and the up/down sign flip', () => {
    const aligned = alignTo(base, copy, I, H);
    expect(Array.from(aligned.gate)).toEqual(Array.from(base.gate));
    expect(Array.from(aligned.up)).toEqual(Array.from(base.up));
    expect(Array.from(aligned.down)).toEqual(Array.from(base.down));
  });

  it('merging an expert with a shuffled copy of itself returns it; a plain average would not', () => {
    const merged = mergeInto({ w: base, weight: 3 }, [{ w: copy, weight: 1 }], I, H);
    merged.gate.forEach((v, i) => expect(v).toBeCloseTo(base.gate[i], 6));
    merged.down.forEach((v, i) => expect(v).toBeCloseTo(base.down[i], 6));
    const naive = weightedAverage([{ w: base, weight: 3 }, { w: copy, weight: 1 }]);
    expect(Math.max(...Array.from(naive.gate, (v, i) => Math.abs(v - base.gate[i])))).toBeGreaterThan(0.05);
  });

  it('weights the average by routing frequency', () => {
    const other = randomExpert(I, H, 2);
    const avg = weightedAverage([{ w: base, weight: 3 }, { w: other, weight: 1 }]);
    expect(avg.up[5]).toBeCloseTo(0.75 * base.up[5] + 0.25 * other.up[5], 6);
  });
});

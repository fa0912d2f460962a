// Sampling and stop strings: what makes `temperature`, `top_p`, `top_k`, `seed` and `stop` mean what OpenAI clients expect.
import { describe, expect, it } from 'vitest';
import { Sampler, seededRandom } from '../../../src/engine/sampler';
import { StopMatcher } from '../../../src/engine/stop';

const logits = Float32Array.from([0.1, 2.0, 1.9, -1, 0.5, 1.95]);

describe('Sampler', () => {
  it('is greedy at temperature 0', () => {
    const s = new Sampler({ temperature: 0, topP: 0.1, topK: 3, seed: 1 });
    for (let i = 0; i < 5; i++) expect(s.sample(logits)).toBe(1);
  });

  it('reproduces the same draws for the same seed, and different ones for another', () => {
    const draw = (seed: number) => { const s = new Sampler({ temperature: 1.5, topP: 1, topK: 0, seed }); return Array.from({ length: 40 }, () => s.sample(logits)); };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('never leaves the top-k set', () => {
    const s = new Sampler({ temperature: 5, topP: 1, topK: 2, seed: 3 });
    const seen = new Set(Array.from({ length: 300 }, () => s.sample(logits)));
    expect([...seen].sort()).toEqual([1, 5]);
  });

  it('keeps the smallest nucleus whose mass reaches top_p', () => {
    // probabilities ~ [0.5, 0.3, 0.2]: top_p 0.6 keeps the first two only
    const l = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    const s = new Sampler({ temperature: 1, topP: 0.6, topK: 0, seed: 11 });
    const seen = new Set(Array.from({ length: 400 }, () => s.sample(l)));
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it('follows the softmax distribution', () => {
    const l = Float32Array.from([Math.log(0.7), Math.log(0.2), Math.log(0.1)]);
    const s = new Sampler({ temperature: 1, topP: 1, topK: 0, seed: 5 });
    const counts = [0, 0, 0];
    for (let i = 0; i < 5000; i++) counts[s.sample(l)]++;
    expect(counts[0] / 5000).toBeCloseTo(0.7, 1);
    expect(counts[2] / 5000).toBeCloseTo(0.1, 1);
  });
});

/** The sampler as first written (sort / map / reduce over plain arrays): its draws are what a seed has always given. */
function referenceSample(logits: Float32Array, p: { temperature: number; topP: number; topK: number }, random: () => number): number {
  let ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (p.topK > 0 && p.topK < ids.length) ids = ids.slice(0, p.topK);
  const max = logits[ids[0]];
  let probs = ids.map((i) => Math.exp((logits[i] - max) / p.temperature));
  let sum = probs.reduce((a, b) => a + b, 0);
  if (p.topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < ids.length) {
      cum += probs[keep] / sum;
      keep++;
      if (cum >= p.topP) break;
    }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((a, b) => a + b, 0);
  }
  let r = random() * sum;
  for (let i = 0; i < ids.length; i++) {
    r -= probs[i];
    if (r <= 0) return ids[i];
  }
  return ids[ids.length - 1];
}

describe('Sampler draws', () => {
  it('are the ones the same seed gave before (a granite-sized vocabulary with ties, -0, +-Infinity)', () => {
    const rnd = seededRandom(42);
    const vocab = 49155;
    for (const params of [
      { temperature: 0.8, topP: 1, topK: 0 },
      { temperature: 1, topP: 0.9, topK: 0 },
      { temperature: 0.7, topP: 0.95, topK: 50 },
      { temperature: 2, topP: 1, topK: 3 },
    ]) {
      const mine = new Sampler({ ...params, seed: 9 });
      const theirs = seededRandom(9);
      for (let step = 0; step < 25; step++) {
        // logits on a coarse grid so that many tie; a few special values
        const logits = Float32Array.from({ length: vocab }, () => Math.round((rnd() - 0.5) * 40) / 4);
        logits[step] = -0;
        logits[100 + step] = Infinity * (step % 3 === 0 ? 1 : -1);
        if (step % 2) logits[7] = logits[8] = Math.max(...logits.subarray(0, 1000)) + 0.5;
        expect(mine.sample(logits)).toBe(referenceSample(logits, params, theirs));
      }
    }
  });
});

describe('StopMatcher', () => {
  const run = (stops: string[], pieces: string[]) => {
    const m = new StopMatcher(stops);
    const out = pieces.map((p) => m.push(p));
    return { out, rest: m.flush(), stopped: m.stopped };
  };

  it('cuts before a stop string split across pieces and emits nothing after it', () => {
    const r = run(['\n\n'], ['Hello', ' world\n', '\nmore', 'text']);
    expect(r.out.join('') + r.rest).toBe('Hello world');
    expect(r.stopped).toBe(true);
  });

  it('holds back a possible stop prefix, then releases it when it does not complete', () => {
    const m = new StopMatcher(['END']);
    expect(m.push('abcE')).toBe('abc');
    expect(m.push('N')).toBe('');
    expect(m.push('x')).toBe('ENx');
    expect(m.flush()).toBe('');
  });

  it('uses the earliest of several stop strings', () => {
    const r = run(['bb', 'a'], ['xxbba']);
    expect(r.out.join('')).toBe('xx');
  });

  it('without stop strings passes text straight through', () => {
    expect(run([], ['a', 'b']).out).toEqual(['a', 'b']);
  });
});

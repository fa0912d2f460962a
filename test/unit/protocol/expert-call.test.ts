// The expert call's plans (src/protocol/expert-call.ts) and the Worker's one-pass row encoding
// (src/protocol/activations.ts encodeRows): pure functions, checked alone.
import { describe, expect, it } from 'vitest';
import { activationsToF32, encodeActivations, encodeRows, type Activations } from '../../../src/protocol/activations';
import { groupPairs, subCall, usedRows, type ExpertCall } from '../../../src/protocol/expert-call';

const H = 64;
const x = Float32Array.from({ length: 5 * H }, (_, i) => Math.cos(i * 0.21) * (1 + (i % 5)));

describe('groupPairs / usedRows / subCall', () => {
  it('groups pairs by key in order of first use, members in pair order', () => {
    const experts = [4, 1, 4, 7, 1, 4];
    expect(groupPairs(experts.length, (i) => experts[i])).toEqual([
      { key: 4, members: [0, 2, 5] },
      { key: 1, members: [1, 4] },
      { key: 7, members: [3] },
    ]);
    expect(groupPairs(0, () => 0)).toEqual([]);
  });

  it('renumbers the rows pairs use 0..n-1 in order of first use', () => {
    expect(usedRows([3, 0, 3, 2, 0])).toEqual({ rows: [3, 0, 2], tokens: [0, 1, 0, 2, 1] });
  });

  it.each(['f32', 'q8_0'] as const)('%s: a sub-call carries its pairs over only the rows they use', (dtype) => {
    const call: ExpertCall = {
      layer: 2, hidden: H, nTok: 5, tokens: [0, 0, 3, 4, 3], experts: [1, 6, 1, 2, 6], weights: [0.5, 0.5, 0.7, 1, 0.3],
      activations: encodeActivations(x, dtype),
    };
    const sub = subCall(call, [1, 4, 3]);
    expect({ ...sub, activations: null }).toEqual({
      layer: 2, hidden: H, nTok: 3, tokens: [0, 1, 2], experts: [6, 6, 2], weights: [0.5, 0.3, 1], activations: null,
    });
    const rows = (a: Activations, r: number[]) => r.flatMap((i) => Array.from(activationsToF32(a).subarray(i * H, i * H + H)));
    expect(Array.from(activationsToF32(sub.activations))).toEqual(rows(call.activations, [0, 3, 4]));
  });
});

describe('encodeRows', () => {
  it.each(['f32', 'f16', 'q8_0'] as const)('%s: rows encoded from where they lie equal the gathered rows encoded whole', (dtype) => {
    const rows = [4, 0, 2];
    const gathered = new Float32Array(rows.flatMap((r) => Array.from(x.subarray(r * H, r * H + H))));
    const once = encodeRows(x, H, rows, dtype);
    const whole = encodeActivations(gathered, dtype);
    if (once.dtype === 'q8_0' && whole.dtype === 'q8_0') {
      expect(Array.from(once.qs)).toEqual(Array.from(whole.qs));
      expect(Array.from(once.d)).toEqual(Array.from(whole.d));
    } else {
      expect(once).toEqual(whole);
    }
  });
});

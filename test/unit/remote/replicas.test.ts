// BACKENDS parsing and ownership (src/remote/replicas.ts) and the row selection that splits a layer's cold
// call between replicas (src/protocol/activations.ts selectRows): pure functions, checked alone. The end-to-end check
// (two real replicas, logits identical to one backend) is test/worker/scale-out.test.ts.
import { describe, expect, it } from 'vitest';
import { encodeActivations, activationsToF32, selectRows } from '../../../src/protocol/activations';
import { BackendsConfigError } from '../../../src/remote/errors';
import { ownerTable, parseReplicas } from '../../../src/remote/replicas';

describe('parseReplicas / ownerTable', () => {
  it('layer blocks, expert blocks and mixes of both own every expert once', () => {
    const r = parseReplicas(
      JSON.stringify([
        { url: 'http://a:1', layers: '0-1', experts: '0-3' },
        { url: 'http://b:1', layers: '0-1', experts: '4-7' },
        { url: 'http://c:1', layers: 2 },
        { url: 'https://d', layers: '3', experts: 'all' },
      ]),
    );
    expect(r[0]).toEqual({ url: 'http://a:1', layers: { lo: 0, hi: 1 }, experts: { lo: 0, hi: 3 } });
    expect(r[2]).toEqual({ url: 'http://c:1', layers: { lo: 2, hi: 2 }, experts: null });
    const owner = ownerTable(r, 4, 8);
    const at = (l: number, e: number) => owner[l * 8 + e];
    expect([at(0, 0), at(1, 3), at(0, 4), at(1, 7), at(2, 0), at(2, 7), at(3, 5)]).toEqual([0, 0, 1, 1, 2, 2, 3]);
  });

  it('overlaps are refused without the model; gaps and ranges past it once it is known', () => {
    expect(() => parseReplicas(JSON.stringify([{ url: 'http://a', layers: '0-1' }, { url: 'http://b', layers: '1', experts: '5' }]))).toThrow(/entries 0 .* and 1 .* both serve/);
    expect(() => parseReplicas(JSON.stringify([{ url: 'http://a' }, { url: 'http://b', layers: '9' }]))).toThrow(BackendsConfigError);
    const gap = parseReplicas(JSON.stringify([{ url: 'http://a', layers: '0' }]));
    expect(() => ownerTable(gap, 2, 4)).toThrow(/no replica serves layer 1 expert 0, layer 1 expert 1, layer 1 expert 2, layer 1 expert 3 \(/);
    expect(() => ownerTable(parseReplicas(JSON.stringify([{ url: 'http://a', layers: '0-2' }])), 2, 4)).toThrow(/reaches past the model's layers 0-1/);
  });
});

describe('selectRows', () => {
  const H = 64;
  const x = Float32Array.from({ length: 4 * H }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
  const rows = [3, 1];
  const want = new Float32Array([...x.subarray(3 * H, 4 * H), ...x.subarray(1 * H, 2 * H)]);

  it.each(['f32', 'f16', 'q8_0'] as const)('%s: the chosen rows, bit for bit what encoding them alone gives', (dtype) => {
    const picked = selectRows(encodeActivations(x, dtype), H, rows);
    expect(activationsToF32(picked)).toEqual(activationsToF32(encodeActivations(want, dtype)));
  });
});

// The shared loading path's format half: an expert's entries checked against its object and the architecture
// (format/manifest.ts expertEntries), and shard bytes -> kernel-memory layout (format/tensor-layout.ts).
import { beforeAll, describe, expect, it } from 'vitest';
import { expertEntries, ManifestError, tensorNames, type Manifest, type TensorEntry } from '../../../src/format/manifest';
import { decodeTensor, encodeTensor, f16ToF32, quantBytes, type DType } from '../../../src/format/quant';
import { hostTensor, shardOf, widenScales, writeShardPart } from '../../../src/format/tensor-layout';
import { readManifest } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { Rng } from '../kernels/rng';

/** A tensor encoded as `dtype` at an odd offset inside a larger object (scales unaligned, as in real objects). */
function placed(dtype: DType, rows: number, cols: number, seed: number) {
  const values = new Rng(seed).floats(rows * cols);
  const shard = encodeTensor(dtype, values);
  const object = new Uint8Array(shard.length + 8);
  object.set(shard, 3);
  const entry: TensorEntry = { object: 'experts/0/0.bin', offset: 3, bytes: shard.length, dtype, shape: [rows, cols] };
  return { entry, object, decoded: decodeTensor(dtype, shard, rows * cols) };
}

/** The first index where a and b differ, -1 when equal (toEqual over megabytes of elements takes minutes). */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('hostTensor', () => {
  for (const dtype of ['f32', 'f16', 'q8_0', 'q4_0'] as const) {
    it(`${dtype}: quants viewed as stored, scales widened; the values are the shard's`, () => {
      const { entry, object, decoded } = placed(dtype, 4, 64, 7);
      const t = hostTensor(entry, object);
      expect([t.dtype, t.rows, t.cols]).toEqual([dtype, 4, 64]);
      expect(t.data.buffer).toBe(object.buffer); // a view, not a copy
      expect([...t.data]).toEqual([...object.subarray(3, 3 + quantBytes(dtype, 256))]);
      if (dtype === 'q8_0' || dtype === 'q4_0') {
        // value i = quant i * scale (i / 32): rebuild the scales from the decoded values and the quants
        expect(t.scales!.length).toBe(8);
        const back = new Float32Array(8);
        widenScales(dtype, 256, object.subarray(3), back);
        expect([...back]).toEqual([...t.scales!]);
        const q0 = dtype === 'q8_0' ? (t.data[0] << 24) >> 24 : (t.data[0] & 0x0f) - 8;
        expect(Math.fround(q0 * t.scales![0])).toBe(decoded[0]);
      } else {
        expect(t.scales).toBeNull();
      }
    });
  }

  it('reads a vector [n] as one row', () => {
    const { entry, object } = placed('f32', 1, 32, 1);
    const t = hostTensor({ ...entry, shape: [32] }, object);
    expect([t.rows, t.cols]).toEqual([1, 32]);
  });
});

describe('shardOf', () => {
  const { entry, object } = placed('q8_0', 4, 64, 3);

  it('refuses an entry that does not fit its object, naming it', () => {
    expect(() => shardOf({ ...entry, bytes: entry.bytes - 1 }, object)).toThrow(ManifestError);
    expect(() => shardOf({ ...entry, offset: 9 }, object)).toThrow(/tensor in experts\/0\/0\.bin at offset 9: .* in an object of \d+ bytes/);
    expect(() => shardOf({ ...entry, shape: [8, 64] }, object)).toThrow(/that shape needs 544/);
  });

  it('refuses quantized rows that are not whole blocks', () => {
    // 8 x 32 elements either way, but rows of 16 columns would split blocks across rows
    expect(() => shardOf({ ...entry, shape: [16, 16] }, object)).toThrow(/that shape needs NaN/);
  });
});

describe('expertEntries', () => {
  let m: Manifest;
  let H: number;
  let I: number;
  beforeAll(async () => {
    m = await readManifest(fsSource('models/default'));
    ({ hiddenSize: H, expertFfnSize: I } = m.architecture);
  });
  const edited = (name: string, change: Partial<TensorEntry>): Manifest =>
    ({ ...m, tensors: { ...m.tensors, [name]: { ...m.tensors[name]!, ...change } } });

  it("gives an expert's gate, up and down with the architecture's shapes", () => {
    const e = expertEntries(m, 1, 3);
    expect(e.gate).toBe(m.tensors[tensorNames.expertGate(1, 3)]);
    expect([e.gate.shape, e.up.shape, e.down.shape]).toEqual([[I, H], [I, H], [H, I]]);
  });

  it('refuses a missing tensor, one in another object and one of another shape', () => {
    const { [tensorNames.expertUp(0, 2)]: _, ...rest } = m.tensors;
    expect(() => expertEntries({ ...m, tensors: rest }, 0, 2)).toThrow(`no tensor ${tensorNames.expertUp(0, 2)}`);
    expect(() => expertEntries(edited(tensorNames.expertDown(0, 2), { object: 'trunk.bin' }), 0, 2))
      .toThrow(`tensor ${tensorNames.expertDown(0, 2)} lives in trunk.bin, expected experts/0/2.bin`);
    expect(() => expertEntries(edited(tensorNames.expertGate(0, 2), { shape: [H, I] }), 0, 2))
      .toThrow(`tensor ${tensorNames.expertGate(0, 2)} has shape [${H},${I}], expected [${I},${H}]`);
  });
});

describe('writeShardPart (the streamed load: a shard arriving in parts)', () => {
  for (const dtype of ['f32', 'f16', 'q8_0', 'q4_0'] as const) {
    it(`${dtype}: parts cut anywhere, inside a value and inside a scale, give the whole shard's layout`, () => {
      const n = 2 * 64;
      const { entry, object } = placed(dtype, 2, 64, 11);
      const shard = shardOf(entry, object);
      const whole = hostTensor(entry, object);
      const qb = quantBytes(dtype, n);
      const scaleCount = whole.scales?.length ?? 0;
      const cuts = [qb + 1, qb + 3, 1, 2, 5, qb - 1, shard.length - 1]; // +1, +3: inside the 1st and 2nd scales
      for (const cut of [...Array(shard.length).keys(), ...cuts.map((c) => [c, c + 2, c + 3])].flat().filter((c) => c > 0 && c < shard.length)) {
        const data = new Uint8Array(qb);
        const scales = whole.scales ? new Float32Array(scaleCount) : null;
        const parts = [...new Set([0, cut, Math.min(shard.length, cut + 3), shard.length])];
        for (let i = 0; i + 1 < parts.length; i++) writeShardPart(dtype, n, shard.subarray(parts[i], parts[i + 1]), parts[i], data, scales);
        expect(data, `cut at ${cut}`).toEqual(whole.data);
        if (scales) expect(scales, `cut at ${cut}`).toEqual(whole.scales);
      }
    });
  }

  it('widens every f16 value as f16ToF32 does, at even and odd addresses, in tens of thousands of scales per part', () => {
    // scale i holds the half i: all 65,536 of them (zeros, subnormals, infinities, NaNs), whole parts and cut ones
    const count = 65536;
    const n = count * 32;
    const qb = quantBytes('q8_0', n);
    const expected = new Float32Array(count).map((_, h) => f16ToF32(h));
    for (const address of [0, 1]) {
      const object = new Uint8Array(address + qb + 2 * count);
      const shard = object.subarray(address);
      for (let i = 0; i < qb; i++) shard[i] = i * 31;
      for (let h = 0; h < count; h++) [shard[qb + 2 * h], shard[qb + 2 * h + 1]] = [h & 0xff, h >> 8];
      for (const cuts of [[], [qb + 7, qb + 2 * 40000 + 1], [qb - 5, qb + 2 * 32768 - 1, qb + 2 * 32768 + 2]]) {
        const data = new Uint8Array(qb);
        const scales = new Float32Array(count);
        const parts = [0, ...cuts, shard.length];
        for (let i = 0; i + 1 < parts.length; i++) writeShardPart('q8_0', n, shard.subarray(parts[i], parts[i + 1]), parts[i], data, scales);
        expect(firstDifference(new Uint32Array(scales.buffer), new Uint32Array(expected.buffer)), `address ${address}, cuts ${cuts}: first wrong scale`).toBe(-1);
        expect(firstDifference(data, shard.subarray(0, qb)), `address ${address}, cuts ${cuts}: first wrong quant`).toBe(-1);
      }
    }
  });

  it('refuses bytes past the shard', () => {
    const { entry, object } = placed('q8_0', 1, 32, 3);
    const shard = shardOf(entry, object);
    expect(() => writeShardPart('q8_0', 32, new Uint8Array(4), shard.length - 2, new Uint8Array(32), new Float32Array(1))).toThrow(RangeError);
  });
});

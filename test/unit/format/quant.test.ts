// The block formats of src/format/quant.ts: f16 conversion, q8_0/q4_0 values as ggml computes them, shard sizes.
import { describe, expect, it } from 'vitest';
import {
  QK, bitsPerWeight, decodeTensor, dequantize, encodeTensor, f16ToF32, f32ToF16, memoryBytes, quantizeQ4_0,
  quantizeQ8_0, roundEven, roundF16, shardBytes,
} from '../../../src/format/quant';
import { Rng } from '../kernels/rng';

const f32bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];
const fromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0];

// Independent oracle for f32 -> f16: the nearest of all finite halves, ties to even mantissa, found by
// binary search over the sorted non-negative halves (no bit tricks shared with the code under test).
const positiveHalves: number[] = [];
for (let h = 0; h < 0x7c00; h++) positiveHalves.push(h);
function oracleF16(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  const max = 65504;
  if (a >= max + 16) return sign | 0x7c00; // 65520 is halfway to 2^16: ties to even go to infinity
  let lo = 0;
  let hi = positiveHalves.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (f16ToF32(positiveHalves[mid]) <= a) lo = mid; else hi = mid;
  }
  const dl = a - f16ToF32(lo);
  const dh = f16ToF32(hi) - a;
  if (dl < dh) return sign | lo;
  if (dh < dl) return sign | hi;
  return sign | (lo % 2 === 0 ? lo : hi);
}

describe('f16 conversion', () => {
  it('round-trips every one of the 65536 halves (NaN stays NaN)', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16ToF32(h);
      const isNan = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNan) {
        expect(Number.isNaN(v)).toBe(true);
        const back = f32ToF16(v);
        expect((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0).toBe(true);
      } else if (f32ToF16(v) !== h) {
        expect.fail(`half 0x${h.toString(16)} -> ${v} -> 0x${f32ToF16(v).toString(16)}`);
      }
    }
  });

  it('decodes known halves', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16ToF32(0x0400)).toBe(2 ** -14);
    expect(f16ToF32(0x3555)).toBe(0.333251953125);
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
  });

  it('rounds to nearest, ties to even', () => {
    const ulp1 = 2 ** -10; // spacing of halves in [1, 2)
    expect(f32ToF16(1 + ulp1 / 2)).toBe(0x3c00); // tie, 0x3c00 is even
    expect(f32ToF16(1 + (3 * ulp1) / 2)).toBe(0x3c02); // tie between 0x3c01 and 0x3c02
    expect(f32ToF16(fromBits(f32bits(1 + ulp1 / 2) + 1))).toBe(0x3c01); // just above the tie
    expect(f32ToF16(fromBits(f32bits(1 + ulp1 / 2) - 1))).toBe(0x3c00); // just below
    expect(f32ToF16(2 - ulp1 / 4)).toBe(0x4000); // carries into the exponent
    expect(f32ToF16(-1 - ulp1 / 2)).toBe(0xbc00);
  });

  it('handles overflow, subnormals, zeros, infinities and NaN', () => {
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // tie between 65504 (odd) and 2^16 -> inf
    expect(f32ToF16(1e10)).toBe(0x7c00);
    expect(f32ToF16(-1e10)).toBe(0xfc00);
    expect(f32ToF16(2 ** -24)).toBe(0x0001);
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie between 0 and the smallest subnormal -> 0
    expect(f32ToF16(2 ** -25 * 1.0001)).toBe(0x0001);
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 subnormal ulps -> 2
    expect(f32ToF16(1023.5 * 2 ** -24)).toBe(0x0400); // tie at the subnormal/normal border -> even 0x400
    expect(f32ToF16(2 ** -30)).toBe(0x0000);
    expect(f32ToF16(-(2 ** -30))).toBe(0x8000);
    expect(f32ToF16(0)).toBe(0x0000);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(Infinity)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(Number.isNaN(f16ToF32(f32ToF16(NaN)))).toBe(true);
  });

  it('matches a nearest-value oracle on random float32 bit patterns', () => {
    const rng = new Rng(7);
    for (let i = 0; i < 20000; i++) {
      // exponents concentrated around the half range so subnormals, normals and overflow are all hit
      const exp = 127 - 28 + rng.int(46);
      const bits = ((rng.int(2) << 31) | (exp << 23) | rng.int(1 << 23)) >>> 0;
      const v = fromBits(bits);
      const got = f32ToF16(v);
      if (got !== oracleF16(v)) expect.fail(`${v} (0x${bits.toString(16)}): got 0x${got.toString(16)}, want 0x${oracleF16(v).toString(16)}`);
    }
  });

  it('roundF16 is idempotent', () => {
    const rng = new Rng(8);
    for (let i = 0; i < 1000; i++) {
      const v = rng.normal() * 100;
      expect(roundF16(roundF16(v))).toBe(roundF16(v));
    }
  });
});

describe('roundEven', () => {
  it('rounds halves to even and everything else to nearest', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6, 3].map(roundEven)).toEqual([0, 2, 2, -0, -2, -2, 2, 3, -3, 3]);
  });
});

describe('q8_0', () => {
  it('matches hand-computed ggml values (amax 127: 1/d = 1, ties to even)', () => {
    const x = new Float32Array(QK);
    x.set([127, 2.5, 3.5, -2.5, 0.5, 1.5, -126.6, 0.49]);
    const q = quantizeQ8_0(x);
    expect(q.d[0]).toBe(0x3c00); // f16(127/127) = 1
    expect(Array.from(new Int8Array(q.qs.buffer).slice(0, 8))).toEqual([127, 2, 4, -2, 0, 2, -127, 0]);
  });

  it('matches hand-computed ggml values on 1..32 (d = f16(32/127), activations q = round(x * 127/amax))', () => {
    const x = Float32Array.from({ length: QK }, (_, i) => i + 1);
    const q = quantizeQ8_0(x);
    expect(q.d[0]).toBe(f32ToF16(Math.fround(32 / 127)));
    expect(f16ToF32(q.d[0])).toBe(0.251953125); // 0x3408
    const qs = new Int8Array(q.qs.buffer);
    // 127/32 = 3.96875 exactly, so x * id is exact: 1 -> 4, 8 -> 31.75 -> 32, 16 -> 63.5 -> 64 (even)
    expect([qs[0], qs[7], qs[15], qs[23], qs[31]]).toEqual([4, 32, 64, 95, 127]);
  });

  it('activations multiply by 127/amax (ggml x86 SIMD), weights by 1/d (ggml ref): they differ in the last bit and flip ties', () => {
    // amax 0.6875: x * (127/amax) is 2.5000002 (-> 3) while x * (1/d) is exactly 2.5 (-> 3 away from zero)
    const x = new Float32Array(QK);
    x.set([0.6875, 0.013533465564250946, -0.013533465564250946, 0.006766732782125473]);
    expect(Math.fround(x[1] * Math.fround(127 / 0.6875))).not.toBe(2.5);
    expect(Math.fround(x[1] * Math.fround(1 / Math.fround(0.6875 / 127)))).toBe(2.5);
    expect(Array.from(new Int8Array(quantizeQ8_0(x).qs.buffer).slice(0, 3))).toEqual([127, 3, -3]);
    expect(Array.from(new Int8Array(quantizeQ8_0(x, 'weight').qs.buffer).slice(0, 3))).toEqual([127, 3, -3]);
  });

  it('weights round ties away from zero as ggml model files do; activations to even', () => {
    const x = new Float32Array(QK);
    x.set([127, 2.5, 3.5, -2.5, 0.5, -0.5, 1.4]);
    expect(Array.from(new Int8Array(quantizeQ8_0(x, 'weight').qs.buffer).slice(0, 7))).toEqual([127, 3, 4, -3, 1, -1, 1]);
    expect(Array.from(new Int8Array(quantizeQ8_0(x).qs.buffer).slice(0, 7)).map((v) => v + 0)).toEqual([127, 2, 4, -2, 0, 0, 1]);
    // encodeTensor writes weights: its quants are the 'weight' ones
    expect(Array.from(new Int8Array(encodeTensor('q8_0', x).buffer).slice(0, 7))).toEqual([127, 3, 4, -3, 1, -1, 1]);
  });

  it('an all-zero block has scale 0 and zero quants', () => {
    const q = quantizeQ8_0(new Float32Array(QK));
    expect(q.d[0]).toBe(0);
    expect(Array.from(q.qs).every((b) => b === 0)).toBe(true);
  });

  it('dequantizes within d/2 plus the f16 rounding of d', () => {
    const rng = new Rng(11);
    const x = rng.floats(QK * 64, 3);
    const y = dequantize(quantizeQ8_0(x));
    for (let b = 0; b < 64; b++) {
      let amax = 0;
      for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
      // |q*d16 - x| <= |q| |d16 - amax/127| + |q amax/127 - x| <= amax 2^-11 + amax/254
      const bound = amax * (2 ** -11 + 1 / 254) * 1.0001;
      for (let j = 0; j < QK; j++) expect(Math.abs(y[b * QK + j] - x[b * QK + j])).toBeLessThanOrEqual(bound);
    }
  });
});

describe('q4_0', () => {
  it('matches hand-computed ggml values (negative max: d = -8/-8 = 1)', () => {
    const x = new Float32Array(QK);
    x.set([-8, 7, 7.9, 0.4, -0.6, 0.5, 3.2]);
    x[16] = -7.5; // element 16 lives in the high nibble of byte 0
    x[17] = 2;
    const q = quantizeQ4_0(x);
    expect(q.d[0]).toBe(0x3c00);
    // q = min(15, trunc(x + 8.5)): -8 -> 0, 7 -> 15, 7.9 -> 15 (clamped), 0.4 -> 8, -0.6 -> 7, 0.5 -> 9, 3.2 -> 11
    const lo = Array.from(q.qs.slice(0, 7), (b) => b & 0xf);
    expect(lo).toEqual([0, 15, 15, 8, 7, 9, 11]);
    expect(q.qs[0] >> 4).toBe(1); // -7.5 + 8.5 = 1
    expect(q.qs[1] >> 4).toBe(10); // 2 + 8.5 -> 10
    expect(q.qs[2] >> 4).toBe(8); // zeros map to 8
    const y = dequantize(q);
    expect(Array.from(y.slice(0, 7))).toEqual([-8, 7, 7, 0, -1, 1, 3]);
    expect(y[16]).toBe(-7);
  });

  it('a positive max gets a negative scale and is reproduced exactly', () => {
    const x = new Float32Array(QK);
    x.set([8, -8, 1]);
    const q = quantizeQ4_0(x);
    expect(f16ToF32(q.d[0])).toBe(-1);
    const y = dequantize(q);
    expect(Array.from(y.slice(0, 3))).toEqual([8, -7, 1]); // -8 on the other side clamps to 7*d
  });

  it('dequantizes within |d| (d/2 except the clamped top step) plus f16 rounding', () => {
    const rng = new Rng(12);
    const x = rng.floats(QK * 64, 2);
    const q = quantizeQ4_0(x);
    const y = dequantize(q);
    let sumErr = 0;
    for (let b = 0; b < 64; b++) {
      const d = Math.abs(f16ToF32(q.d[b]));
      for (let j = 0; j < QK; j++) {
        const err = Math.abs(y[b * QK + j] - x[b * QK + j]);
        expect(err).toBeLessThanOrEqual(d * (1 + 8 * 2 ** -11) * 1.0001);
        sumErr += err / d;
      }
    }
    expect(sumErr / (64 * QK)).toBeLessThan(0.3); // mean error ~d/4 for uniform rounding
  });
});

describe('encodeTensor / decodeTensor and sizes', () => {
  it('sizes match ggml: q8_0 34 bytes and q4_0 18 bytes per 32 in a shard', () => {
    expect(shardBytes('q8_0', QK)).toBe(34); // sizeof(block_q8_0)
    expect(shardBytes('q4_0', QK)).toBe(18); // sizeof(block_q4_0)
    expect(shardBytes('f16', QK)).toBe(64);
    expect(shardBytes('f32', QK)).toBe(128);
    expect(memoryBytes('q8_0', QK)).toBe(36); // scales widened to f32 in kernel memory
    expect(memoryBytes('q4_0', QK)).toBe(20);
    expect(memoryBytes('f16', 10)).toBe(20);
    expect(shardBytes('q4_0', 4096 * 64)).toBe(4096 * 64 * 18 / 32);
    expect(bitsPerWeight('q8_0')).toBe(8.5);
    expect(bitsPerWeight('q4_0')).toBe(4.5);
    expect(bitsPerWeight('f16')).toBe(16);
    expect(() => shardBytes('q8_0', 33)).toThrow(RangeError);
    expect(() => memoryBytes('q4_0', 48)).toThrow(RangeError);
    expect(shardBytes('f32', 33)).toBe(132); // float formats need no blocks
  });

  it('round-trips every dtype through shard bytes', () => {
    const rng = new Rng(13);
    const x = rng.floats(QK * 10, 1.5);
    expect(Array.from(decodeTensor('f32', encodeTensor('f32', x), x.length))).toEqual(Array.from(x));
    const f16 = decodeTensor('f16', encodeTensor('f16', x), x.length);
    expect(Array.from(f16)).toEqual(Array.from(x, roundF16));
    for (const dt of ['q8_0', 'q4_0'] as const) {
      const bytes = encodeTensor(dt, x);
      expect(bytes.length).toBe(shardBytes(dt, x.length));
      const y = decodeTensor(dt, bytes, x.length);
      const ref = dequantize(dt === 'q8_0' ? quantizeQ8_0(x, 'weight') : quantizeQ4_0(x));
      expect(Array.from(y)).toEqual(Array.from(ref));
      // decoding is a fixed point: re-encoding the decoded values gives the same bytes for q8_0
      if (dt === 'q8_0') expect(Array.from(encodeTensor(dt, y))).toEqual(Array.from(bytes));
    }
  });

  it('lays a q8_0 shard out as quants then little-endian f16 scales', () => {
    const x = new Float32Array(QK * 2);
    x[0] = 127; // block 0: d = 1
    x[QK] = -63.5; // block 1: d = 0.5
    const bytes = encodeTensor('q8_0', x);
    expect(bytes[0]).toBe(127);
    expect(new Int8Array(bytes.buffer)[QK]).toBe(-127);
    expect(bytes[2 * QK] | (bytes[2 * QK + 1] << 8)).toBe(0x3c00);
    expect(bytes[2 * QK + 2] | (bytes[2 * QK + 3] << 8)).toBe(0x3800);
  });

  it('decodes from an unaligned view of a larger buffer', () => {
    const x = new Rng(14).floats(QK * 2);
    const bytes = encodeTensor('q4_0', x);
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    expect(Array.from(decodeTensor('q4_0', big.subarray(3), x.length))).toEqual(Array.from(decodeTensor('q4_0', bytes, x.length)));
  });
});

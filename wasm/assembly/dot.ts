// Row dot products: one weight row against one prepared activation (see activation.ts), per dtype, each as a
// SIMD kernel and its scalar twin. Both twins use the same float order, so they agree bit for bit:
//   quantized: block b's exact int sum times (weight scale * activation scale) is added to lane b % 4 of an
//              f32 accumulator; f32/f16: element i is added to lane i % 4 (tail elements sequentially after);
//   the lanes are combined as (l0 + l2) + (l1 + l3).
import { QK, DT_F32, DT_F16, DT_Q8_0, RELAXED, f16ToF32, f16x4ToF32x4 } from './common';
import { extOff, xsOff, xsumOff } from './activation';

// ---- horizontal helpers ----

/** [a0+a2, a1+a3, b0+b2, b1+b3]: half of the horizontal sums of two i32x4. */
@inline function pairSum(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
}

/** [sum(a), sum(b), sum(c), sum(d)] from pairSum(a, b) and pairSum(c, d). */
@inline function finishSum(ab: v128, cd: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 2, 4, 6), v128.shuffle<i32>(ab, cd, 1, 3, 5, 7));
}

@inline function hsumI32(a: v128): i32 {
  return i32x4.extract_lane(a, 0) + i32x4.extract_lane(a, 1) + i32x4.extract_lane(a, 2) + i32x4.extract_lane(a, 3);
}

/** (l0 + l2) + (l1 + l3), the lane order every twin uses. */
@inline function hsumF32(a: v128): f32 {
  const t = f32x4.add(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1);
}

// ---- scheduling fences ----
// V8's TurboFan hoists every load of a loop body to its top (loads are ordered effects, the arithmetic floats down
// to its uses), so a 4-block body keeps ~24 vectors live and spills. A store of an intermediate result between
// half-bodies is an effect the next loads must follow, which bounds the live vectors. The bytes are never read.
const FENCES: bool = true;
const FENCE: usize = memory.data(16, 16);

@inline function fence(v: v128): void {
  if (FENCES) v128.store(FENCE, v);
}

// ---- q8_0: w (cols i8), ws (nb f32) ----

/** i32x4 whose lanes sum to block w . x (32 elements); `e`: the block's ext activation (see activation.ts). */
@inline function blockQ8(w: usize, e: usize, cols: i32, ones: v128): v128 {
  const w0 = v128.load(w);
  const w1 = v128.load(w, 16);
  if (RELAXED) {
    // dot(w, x) = dot(w, max(x,0)) - dot(w, max(-x,0)): both right operands are in 0..127, so the relaxed dot is
    // exact. Each i16 lane (a pair of products) of either dot and of their difference fits in i16.
    const xn = e + <usize>cols;
    const d0 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w0, v128.load(e)), i16x8.relaxed_dot_i8x16_i7x16_s(w0, v128.load(xn)));
    const d1 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w1, v128.load(e, 16)), i16x8.relaxed_dot_i8x16_i7x16_s(w1, v128.load(xn, 16)));
    return i32x4.add(i32x4.dot_i16x8_s(d0, ones), i32x4.dot_i16x8_s(d1, ones));
  } else {
    let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), v128.load(e));
    s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), v128.load(e, 16)));
    s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), v128.load(e, 32)));
    return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), v128.load(e, 48)));
  }
}

// bytes of ext per block
const EXT_BLOCK: i32 = RELAXED ? 32 : 64;

export function dotQ8Simd(w: usize, ws: usize, a: usize, cols: i32): f32 {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  const e = a + extOff(cols);
  const ones = i16x8.splat(1);
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const o = <usize>(b * QK);
    const eo = e + <usize>(b * EXT_BLOCK);
    const ab = pairSum(blockQ8(w + o, eo, cols, ones), blockQ8(w + o + 32, eo + EXT_BLOCK, cols, ones));
    fence(ab);
    const cd = pairSum(blockQ8(w + o + 64, eo + 2 * EXT_BLOCK, cols, ones), blockQ8(w + o + 96, eo + 3 * EXT_BLOCK, cols, ones));
    const s = finishSum(ab, cd);
    const sc = f32x4.mul(v128.load(ws + (<usize>b << 2)), v128.load(xs + (<usize>b << 2)));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), sc));
    fence(acc);
  }
  if (b == nb) return hsumF32(acc);
  let l0 = f32x4.extract_lane(acc, 0), l1 = f32x4.extract_lane(acc, 1), l2 = f32x4.extract_lane(acc, 2);
  for (; b < nb; b++) {
    const v = <f32>hsumI32(blockQ8(w + <usize>(b * QK), e + <usize>(b * EXT_BLOCK), cols, ones)) *
      (load<f32>(ws + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2)));
    if ((b & 3) == 0) l0 += v; else if ((b & 3) == 1) l1 += v; else l2 += v; // nb % 4 < 4: lane 3 is never a tail lane
  }
  return (l0 + l2) + (l1 + f32x4.extract_lane(acc, 3));
}

export function dotQ8Scalar(w: usize, ws: usize, a: usize, cols: i32): f32 {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const o = <usize>(b * QK);
    let s = 0;
    for (let j = 0; j < QK; j++) s += <i32>load<i8>(w + o + j) * <i32>load<i8>(a + o + j);
    const v = <f32>s * (load<f32>(ws + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2)));
    const lane = b & 3;
    if (lane == 0) l0 += v; else if (lane == 1) l1 += v; else if (lane == 2) l2 += v; else l3 += v;
  }
  return (l0 + l2) + (l1 + l3);
}

// ---- q4_0: w (cols/2 bytes; block b = 16 bytes, byte j = element j (low nibble) | element j+16 (high)) ----

/** i32x4 whose lanes sum to block x . q (unsigned nibbles; the -8 offset is corrected with xsum by the caller). */
@inline function blockQ4(w: usize, a: usize, e: usize, ones: v128): v128 {
  const v = v128.load(w);
  if (RELAXED) {
    // nibbles (0..15) are a valid 7-bit operand; pairs of products stay within +-3810, so their i16 sum is exact
    const lo = v128.and(v, i8x16.splat(0x0f)); // elements 0..15
    const hi = i8x16.shr_u(v, 4); // elements 16..31
    const s16 = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(a), lo), i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(a, 16), hi));
    return i32x4.dot_i16x8_s(s16, ones);
  } else {
    // a 16-bit lane of the packed bytes holds elements 2L | 2L+16 << 4 | 2L+1 << 8 | 2L+17 << 12 (see activation.ts)
    const m = i16x8.splat(0x0f);
    let s = i32x4.dot_i16x8_s(v128.and(v, m), v128.load(e));
    s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), m), v128.load(e, 16)));
    s = i32x4.add(s, i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), m), v128.load(e, 32)));
    return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), v128.load(e, 48)));
  }
}

export function dotQ4Simd(w: usize, ws: usize, a: usize, cols: i32): f32 {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  const xsum = a + xsumOff(cols);
  const e = a + extOff(cols);
  const ones = i16x8.splat(1);
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const o = <usize>(b * QK);
    const wo = w + <usize>(b * 16);
    const eo = e + <usize>(b * 64);
    const ab = pairSum(blockQ4(wo, a + o, eo, ones), blockQ4(wo + 16, a + o + 32, eo + 64, ones));
    fence(ab);
    let s = finishSum(ab, pairSum(blockQ4(wo + 32, a + o + 64, eo + 128, ones), blockQ4(wo + 48, a + o + 96, eo + 192, ones)));
    s = i32x4.sub(s, i32x4.shl(v128.load(xsum + (<usize>b << 2)), 3));
    const sc = f32x4.mul(v128.load(ws + (<usize>b << 2)), v128.load(xs + (<usize>b << 2)));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), sc));
    fence(acc);
  }
  if (b == nb) return hsumF32(acc);
  let l0 = f32x4.extract_lane(acc, 0), l1 = f32x4.extract_lane(acc, 1), l2 = f32x4.extract_lane(acc, 2);
  for (; b < nb; b++) {
    const s = hsumI32(blockQ4(w + <usize>(b * 16), a + <usize>(b * QK), e + <usize>(b * 64), ones)) - (load<i32>(xsum + (<usize>b << 2)) << 3);
    const v = <f32>s * (load<f32>(ws + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2)));
    if ((b & 3) == 0) l0 += v; else if ((b & 3) == 1) l1 += v; else l2 += v;
  }
  return (l0 + l2) + (l1 + f32x4.extract_lane(acc, 3));
}

export function dotQ4Scalar(w: usize, ws: usize, a: usize, cols: i32): f32 {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wo = w + <usize>(b * 16);
    const o = a + <usize>(b * QK);
    let s = 0;
    for (let j = 0; j < 16; j++) {
      const byte = <i32>load<u8>(wo + j);
      s += ((byte & 0x0f) - 8) * <i32>load<i8>(o + j) + ((byte >> 4) - 8) * <i32>load<i8>(o + 16 + j);
    }
    const v = <f32>s * (load<f32>(ws + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2)));
    const lane = b & 3;
    if (lane == 0) l0 += v; else if (lane == 1) l1 += v; else if (lane == 2) l2 += v; else l3 += v;
  }
  return (l0 + l2) + (l1 + l3);
}

// ---- f32 / f16 weights against an f32 activation ----

export function dotF32Simd(w: usize, x: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(w + (<usize>i << 2)), v128.load(x + (<usize>i << 2))));
  let s = hsumF32(acc);
  for (; i < n; i++) s += load<f32>(w + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
  return s;
}

export function dotF32Scalar(w: usize, x: usize, n: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = w + (<usize>i << 2), q = x + (<usize>i << 2);
    l0 += load<f32>(p) * load<f32>(q);
    l1 += load<f32>(p, 4) * load<f32>(q, 4);
    l2 += load<f32>(p, 8) * load<f32>(q, 8);
    l3 += load<f32>(p, 12) * load<f32>(q, 12);
  }
  let s = (l0 + l2) + (l1 + l3);
  for (; i < n; i++) s += load<f32>(w + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
  return s;
}

export function dotF16Simd(w: usize, x: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const h = i32x4.extend_low_i16x8_u(v128.load64_zero(w + (<usize>i << 1)));
    acc = f32x4.add(acc, f32x4.mul(f16x4ToF32x4(h), v128.load(x + (<usize>i << 2))));
  }
  let s = hsumF32(acc);
  for (; i < n; i++) s += f16ToF32(load<u16>(w + (<usize>i << 1))) * load<f32>(x + (<usize>i << 2));
  return s;
}

export function dotF16Scalar(w: usize, x: usize, n: i32): f32 {
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = w + (<usize>i << 1), q = x + (<usize>i << 2);
    l0 += f16ToF32(load<u16>(p)) * load<f32>(q);
    l1 += f16ToF32(load<u16>(p, 2)) * load<f32>(q, 4);
    l2 += f16ToF32(load<u16>(p, 4)) * load<f32>(q, 8);
    l3 += f16ToF32(load<u16>(p, 6)) * load<f32>(q, 12);
  }
  let s = (l0 + l2) + (l1 + l3);
  for (; i < n; i++) s += f16ToF32(load<u16>(w + (<usize>i << 1))) * load<f32>(x + (<usize>i << 2));
  return s;
}

/** Row `w` (scales `ws`) of dtype `dt` . prepared activation `a`. */
export function dotRow(dt: i32, w: usize, ws: usize, a: usize, cols: i32, simd: bool): f32 {
  if (dt == DT_Q8_0) return simd ? dotQ8Simd(w, ws, a, cols) : dotQ8Scalar(w, ws, a, cols);
  if (dt == DT_F32) return simd ? dotF32Simd(w, a, cols) : dotF32Scalar(w, a, cols);
  if (dt == DT_F16) return simd ? dotF16Simd(w, a, cols) : dotF16Scalar(w, a, cols);
  return simd ? dotQ4Simd(w, ws, a, cols) : dotQ4Scalar(w, ws, a, cols);
}

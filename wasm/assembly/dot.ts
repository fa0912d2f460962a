// Row dot products over prepared activations (see activation.ts): the f32/f16 dots and the per-dtype dispatch.
// The quantized dots live in dot-q8.ts and dot-q4.ts. Every SIMD kernel has a scalar twin with the same float
// order, so the two agree bit for bit: element i goes to lane i % 4 of an f32 accumulator, tail elements are
// added sequentially after, and the lanes are combined as (l0 + l2) + (l1 + l3).
import { DT_F32, DT_F16, DT_Q8_0, DT_Q4_0, DT_Q4_0X4, DT_Q8_0X4, f16Const, f16ToF32, f16x4ToF32x4 } from './common';
import { hsumF32 } from './simd-util';
import { dotQ8Simd, dotQ8Scalar, dot2Q8Simd } from './dot-q8';
import { dotQ4Simd, dotQ4Scalar, dot2Q4Simd } from './dot-q4';

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
  const c0 = f16Const(0), c1 = f16Const(1), c2 = f16Const(2), c3 = f16Const(3), c4 = f16Const(4);
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const h = i32x4.extend_low_i16x8_u(v128.load64_zero(w + (<usize>i << 1)));
    acc = f32x4.add(acc, f32x4.mul(f16x4ToF32x4(h, c0, c1, c2, c3, c4), v128.load(x + (<usize>i << 2))));
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

/** Row `w` (scales `ws`) of dtype `dt` . prepared activation `a`. Never packed weights: a packed row is its matrix's (dotRowQ4x4, dotRowQ8x4). */
export function dotRow(dt: i32, w: usize, ws: usize, a: usize, cols: i32, simd: bool): f32 {
  if (dt == DT_Q8_0) return simd ? dotQ8Simd(w, ws, a, cols) : dotQ8Scalar(w, ws, a, cols);
  if (dt == DT_F32) return simd ? dotF32Simd(w, a, cols) : dotF32Scalar(w, a, cols);
  if (dt == DT_F16) return simd ? dotF16Simd(w, a, cols) : dotF16Scalar(w, a, cols);
  if (dt == DT_Q4_0X4 || dt == DT_Q8_0X4) unreachable();
  return simd ? dotQ4Simd(w, ws, a, cols) : dotQ4Scalar(w, ws, a, cols);
}

/**
 * *yA = row wA . a and *yB = row wB . a (scales wsA, wsB). The quantized SIMD kernels read the activation once
 * for both rows; every value equals what dotRow gives for that row.
 */
export function dotRows2(dt: i32, wA: usize, wsA: usize, wB: usize, wsB: usize, a: usize, cols: i32, yA: usize, yB: usize, simd: bool): void {
  if (simd && dt == DT_Q8_0) { dot2Q8Simd(wA, wB, wsA, wsB, a, cols, yA, yB); return; }
  if (simd && dt == DT_Q4_0) { dot2Q4Simd(wA, wB, wsA, wsB, a, cols, yA, yB); return; }
  store<f32>(yA, dotRow(dt, wA, wsA, a, cols, simd));
  store<f32>(yB, dotRow(dt, wB, wsB, a, cols, simd));
}

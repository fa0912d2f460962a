// q4_0 row dots: weights w (cols/2 bytes; block b = 16 bytes, byte j = element j (low nibble) | element j+16 (high
// nibble) << 4, ggml's order) with f32 scales ws against a prepared activation. The SIMD kernels multiply by the
// unsigned nibbles q and subtract 8 * sum(x) per block (exact); block sums are accumulated as in dot-q8.ts.
import { QK, RELAXED } from './common';
import { extOff, xsOff, xsumOff } from './activation';
import { pairSum, finishSum, hsumI32, hsumF32, fence, fence2, nibbleMask, nibbleMaskI16, onesI16 } from './simd-util';

/**
 * i32x4 whose lanes sum to block x . q (nibbles unsigned). x0..x3 are the activation operands, shared by every row
 * dotted with it: relaxed build x0, x1 = qx of elements 0..15, 16..31 (x2, x3 unused); SIMD build the 64 ext bytes,
 * qx as i16 in the order [x0,x2..x14][x16,x18..x30][x1,x3..x15][x17..x31] (activation.ts).
 */
@inline function blockQ4(w: usize, x0: v128, x1: v128, x2: v128, x3: v128, ones: v128, m: v128): v128 {
  return blockQ4v(v128.load(w), x0, x1, x2, x3, ones, m);
}

/** blockQ4 of the block's 16 weight bytes `v`. */
@inline function blockQ4v(v: v128, x0: v128, x1: v128, x2: v128, x3: v128, ones: v128, m: v128): v128 {
  if (RELAXED) {
    // nibbles (0..15) are a valid 7-bit operand; a pair of products is within +-3810, so the i16 sums are exact
    const lo = v128.and(v, m); // elements 0..15
    // elements 16..31; i16 shift + the hoisted mask: V8 lowers i8x16.shr_u to a shift plus a mask it rebuilds each time
    const hi = v128.and(i16x8.shr_u(v, 4), m);
    return i32x4.dot_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi)), ones);
  } else {
    // a 16-bit lane L of the packed bytes holds elements 2L | 2L+16 << 4 | 2L+1 << 8 | 2L+17 << 12
    const s0 = i32x4.add(i32x4.dot_i16x8_s(v128.and(v, m), x0), i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), m), x1));
    const s1 = i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), m), x2), i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), x3));
    return i32x4.add(s0, s1);
  }
}

/** blockQ4v's nibble mask, loaded (simd-util.ts): bytes for the relaxed build's i8 dots, i16 lanes for the SIMD build's. */
@inline function nibbleMaskQ4(): v128 {
  return RELAXED ? nibbleMask() : nibbleMaskI16();
}

/** The activation operands of block b: `a` the token's prepared activation, `e` its ext area. */
@inline function xq(a: usize, e: usize, b: i32, k: i32): v128 {
  if (RELAXED) return v128.load(a + <usize>(b * QK + k * 16));
  return v128.load(e + <usize>(b * 64 + k * 16));
}

@inline function blockQ4At(w: usize, a: usize, e: usize, b: i32, ones: v128, m: v128): v128 {
  return RELAXED
    ? blockQ4(w + <usize>(b * 16), xq(a, e, b, 0), xq(a, e, b, 1), xq(a, e, b, 0), xq(a, e, b, 1), ones, m)
    : blockQ4(w + <usize>(b * 16), xq(a, e, b, 0), xq(a, e, b, 1), xq(a, e, b, 2), xq(a, e, b, 3), ones, m);
}

/** i32 block sums of blocks b..b+3 with the -8 offset applied. */
@inline function offsetQ4(s: v128, xsum: usize, b: i32): v128 {
  return i32x4.sub(s, i32x4.shl(v128.load(xsum + (<usize>b << 2)), 3));
}

@inline function tailQ4(w: usize, ws: usize, a: usize, e: usize, xs: usize, xsum: usize, b: i32, nb: i32, acc: v128, ones: v128, m: v128): f32 {
  let l0 = f32x4.extract_lane(acc, 0), l1 = f32x4.extract_lane(acc, 1), l2 = f32x4.extract_lane(acc, 2);
  for (; b < nb; b++) {
    const s = hsumI32(blockQ4At(w, a, e, b, ones, m)) - (load<i32>(xsum + (<usize>b << 2)) << 3);
    const v = <f32>s * (load<f32>(ws + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2)));
    if ((b & 3) == 0) l0 += v; else if ((b & 3) == 1) l1 += v; else l2 += v;
  }
  return (l0 + l2) + (l1 + f32x4.extract_lane(acc, 3));
}

export function dotQ4Simd(w: usize, ws: usize, a: usize, cols: i32): f32 {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  const xsum = a + xsumOff(cols);
  const e = a + extOff(cols);
  const ones = onesI16(), m = nibbleMaskQ4();
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const ab = pairSum(blockQ4At(w, a, e, b, ones, m), blockQ4At(w, a, e, b + 1, ones, m));
    fence(ab);
    const s = offsetQ4(finishSum(ab, pairSum(blockQ4At(w, a, e, b + 2, ones, m), blockQ4At(w, a, e, b + 3, ones, m))), xsum, b);
    const sc = f32x4.mul(v128.load(ws + (<usize>b << 2)), v128.load(xs + (<usize>b << 2)));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), sc));
    fence(acc);
  }
  return b == nb ? hsumF32(acc) : tailQ4(w, ws, a, e, xs, xsum, b, nb, acc, ones, m);
}

/** Two rows (wA, wB) against one activation: *yA, *yB; each value is exactly dotQ4Simd's. Constant load offsets. */
export function dot2Q4Simd(wA: usize, wB: usize, wsA: usize, wsB: usize, a: usize, cols: i32, yA: usize, yB: usize): void {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  const xsum = a + xsumOff(cols);
  const e = a + extOff(cols);
  const ones = onesI16(), m = nibbleMaskQ4();
  let accA = f32x4.splat(0);
  let accB = f32x4.splat(0);
  let pA = wA, pB = wB, px = RELAXED ? a : e, pwsA = wsA, pwsB = wsB, pxs = xs, pxsum = xsum;
  const XB: i32 = RELAXED ? 32 : 64; // activation bytes per block
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    let x0 = v128.load(px), x1 = v128.load(px, 16), x2 = RELAXED ? x0 : v128.load(px, 32), x3 = RELAXED ? x1 : v128.load(px, 48);
    const a0 = blockQ4v(v128.load(pA), x0, x1, x2, x3, ones, m), b0 = blockQ4v(v128.load(pB), x0, x1, x2, x3, ones, m);
    x0 = v128.load(px, XB); x1 = v128.load(px, XB + 16);
    x2 = RELAXED ? x0 : v128.load(px, XB + 32); x3 = RELAXED ? x1 : v128.load(px, XB + 48);
    const abA = pairSum(a0, blockQ4v(v128.load(pA, 16), x0, x1, x2, x3, ones, m));
    const abB = pairSum(b0, blockQ4v(v128.load(pB, 16), x0, x1, x2, x3, ones, m));
    fence2(abA, abB);
    x0 = v128.load(px, 2 * XB); x1 = v128.load(px, 2 * XB + 16);
    x2 = RELAXED ? x0 : v128.load(px, 2 * XB + 32); x3 = RELAXED ? x1 : v128.load(px, 2 * XB + 48);
    const a2 = blockQ4v(v128.load(pA, 32), x0, x1, x2, x3, ones, m), b2 = blockQ4v(v128.load(pB, 32), x0, x1, x2, x3, ones, m);
    x0 = v128.load(px, 3 * XB); x1 = v128.load(px, 3 * XB + 16);
    x2 = RELAXED ? x0 : v128.load(px, 3 * XB + 32); x3 = RELAXED ? x1 : v128.load(px, 3 * XB + 48);
    const sA = offsetQ4at(finishSum(abA, pairSum(a2, blockQ4v(v128.load(pA, 48), x0, x1, x2, x3, ones, m))), pxsum);
    const sB = offsetQ4at(finishSum(abB, pairSum(b2, blockQ4v(v128.load(pB, 48), x0, x1, x2, x3, ones, m))), pxsum);
    const xsv = v128.load(pxs);
    accA = f32x4.add(accA, f32x4.mul(f32x4.convert_i32x4_s(sA), f32x4.mul(v128.load(pwsA), xsv)));
    accB = f32x4.add(accB, f32x4.mul(f32x4.convert_i32x4_s(sB), f32x4.mul(v128.load(pwsB), xsv)));
    fence2(accA, accB);
    pA += 64; pB += 64; px += 4 * XB; pwsA += 16; pwsB += 16; pxs += 16; pxsum += 16;
  }
  store<f32>(yA, b == nb ? hsumF32(accA) : tailQ4(wA, wsA, a, e, xs, xsum, b, nb, accA, ones, m));
  store<f32>(yB, b == nb ? hsumF32(accB) : tailQ4(wB, wsB, a, e, xs, xsum, b, nb, accB, ones, m));
}

@inline function offsetQ4at(s: v128, xsum: usize): v128 {
  return i32x4.sub(s, i32x4.shl(v128.load(xsum), 3));
}

/** The exact integer dot of one q4_0 block (16 bytes at wo, ggml's order) with 32 activation quants at o. */
@inline export function blockQ4Scalar(wo: usize, o: usize): i32 {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const byte = <i32>load<u8>(wo + j);
    s += ((byte & 0x0f) - 8) * <i32>load<i8>(o + j) + ((byte >> 4) - 8) * <i32>load<i8>(o + 16 + j);
  }
  return s;
}

export function dotQ4Scalar(w: usize, ws: usize, a: usize, cols: i32): f32 {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const s = blockQ4Scalar(w + <usize>(b * 16), a + <usize>(b * QK));
    const v = <f32>s * (load<f32>(ws + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2)));
    const lane = b & 3;
    if (lane == 0) l0 += v; else if (lane == 1) l1 += v; else if (lane == 2) l2 += v; else l3 += v;
  }
  return (l0 + l2) + (l1 + l3);
}

// The four rows' f32x4 accumulators of matvec4Q4Simd live in memory (see dot-q8.ts).
const ACC4: usize = memory.data(64, 16);

/** Mat-vec y (4q) = W (4q, cols) @ a, rows r, r + q, r + 2q, r + 3q together, as matvec4Q8Simd. */
export function matvec4Q4Simd(w: usize, ws: usize, q: i32, cols: i32, a: usize, y: usize): void {
  const off = <usize>q * <usize>(cols >> 1); // bytes between the four rows' quants; their scales are off / 4 apart
  for (let r = 0; r < q; r++) {
    const o = <usize>r * <usize>(cols >> 1);
    dot4Q4(w + o, ws + (o >> 2), off, off >> 2, a, cols, y + (<usize>r << 2), <usize>q << 2);
  }
}

/** Rows w + k*off (scales ws + k*soff), k = 0..3, against `a`: stored at y + k*ystep. */
/** Four rows w + k*off (scales ws + k*soff), k = 0..3, at any distance, against `a`: y + k*ystep; each dotQ4Simd's value. */
export function dot4RowsQ4Simd(w: usize, ws: usize, off: usize, soff: usize, a: usize, cols: i32, y: usize, ystep: usize): void {
  dot4Q4(w, ws, off, soff, a, cols, y, ystep);
}

@inline function dot4Q4(w: usize, ws: usize, off: usize, soff: usize, a: usize, cols: i32, y: usize, ystep: usize): void {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  const xsum = a + xsumOff(cols);
  const e = a + extOff(cols);
  const ones = onesI16(), m = nibbleMaskQ4();
  const z = f32x4.splat(0);
  v128.store(ACC4, z); v128.store(ACC4, z, 16); v128.store(ACC4, z, 32); v128.store(ACC4, z, 48);
  // one pointer per stream: the other three rows are constant offsets away (fewer registers, no spills)
  const off2 = off << 1, off3 = off * 3, soff2 = soff << 1, soff3 = soff * 3;
  let pA = w, px = RELAXED ? a : e, pxs = xs, pxsum = xsum, sA = ws;
  const XB: i32 = RELAXED ? 32 : 64; // activation bytes per block
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const pB = pA + off, pC = pA + off2, pD = pA + off3, sB = sA + soff, sC = sA + soff2, sD = sA + soff3;
    let x0 = v128.load(px), x1 = v128.load(px, 16), x2 = RELAXED ? x0 : v128.load(px, 32), x3 = RELAXED ? x1 : v128.load(px, 48);
    let rA = blockQ4v(v128.load(pA), x0, x1, x2, x3, ones, m), rB = blockQ4v(v128.load(pB), x0, x1, x2, x3, ones, m);
    let rC = blockQ4v(v128.load(pC), x0, x1, x2, x3, ones, m), rD = blockQ4v(v128.load(pD), x0, x1, x2, x3, ones, m);
    fence2(rA, rB); fence2(rC, rD);
    x0 = v128.load(px, XB); x1 = v128.load(px, XB + 16);
    x2 = RELAXED ? x0 : v128.load(px, XB + 32); x3 = RELAXED ? x1 : v128.load(px, XB + 48);
    const abA = pairSum(rA, blockQ4v(v128.load(pA, 16), x0, x1, x2, x3, ones, m));
    const abB = pairSum(rB, blockQ4v(v128.load(pB, 16), x0, x1, x2, x3, ones, m));
    const abC = pairSum(rC, blockQ4v(v128.load(pC, 16), x0, x1, x2, x3, ones, m));
    const abD = pairSum(rD, blockQ4v(v128.load(pD, 16), x0, x1, x2, x3, ones, m));
    fence2(abA, abB); fence2(abC, abD);
    x0 = v128.load(px, 2 * XB); x1 = v128.load(px, 2 * XB + 16);
    x2 = RELAXED ? x0 : v128.load(px, 2 * XB + 32); x3 = RELAXED ? x1 : v128.load(px, 2 * XB + 48);
    rA = blockQ4v(v128.load(pA, 32), x0, x1, x2, x3, ones, m); rB = blockQ4v(v128.load(pB, 32), x0, x1, x2, x3, ones, m);
    rC = blockQ4v(v128.load(pC, 32), x0, x1, x2, x3, ones, m); rD = blockQ4v(v128.load(pD, 32), x0, x1, x2, x3, ones, m);
    fence2(rA, rB); fence2(rC, rD);
    x0 = v128.load(px, 3 * XB); x1 = v128.load(px, 3 * XB + 16);
    x2 = RELAXED ? x0 : v128.load(px, 3 * XB + 32); x3 = RELAXED ? x1 : v128.load(px, 3 * XB + 48);
    const tA = offsetQ4at(finishSum(abA, pairSum(rA, blockQ4v(v128.load(pA, 48), x0, x1, x2, x3, ones, m))), pxsum);
    const tB = offsetQ4at(finishSum(abB, pairSum(rB, blockQ4v(v128.load(pB, 48), x0, x1, x2, x3, ones, m))), pxsum);
    fence2(tA, tB);
    const tC = offsetQ4at(finishSum(abC, pairSum(rC, blockQ4v(v128.load(pC, 48), x0, x1, x2, x3, ones, m))), pxsum);
    const tD = offsetQ4at(finishSum(abD, pairSum(rD, blockQ4v(v128.load(pD, 48), x0, x1, x2, x3, ones, m))), pxsum);
    const xsv = v128.load(pxs);
    v128.store(ACC4, f32x4.add(v128.load(ACC4), f32x4.mul(f32x4.convert_i32x4_s(tA), f32x4.mul(v128.load(sA), xsv))));
    v128.store(ACC4, f32x4.add(v128.load(ACC4, 16), f32x4.mul(f32x4.convert_i32x4_s(tB), f32x4.mul(v128.load(sB), xsv))), 16);
    v128.store(ACC4, f32x4.add(v128.load(ACC4, 32), f32x4.mul(f32x4.convert_i32x4_s(tC), f32x4.mul(v128.load(sC), xsv))), 32);
    v128.store(ACC4, f32x4.add(v128.load(ACC4, 48), f32x4.mul(f32x4.convert_i32x4_s(tD), f32x4.mul(v128.load(sD), xsv))), 48);
    pA += 64; px += 4 * XB; pxs += 16; pxsum += 16; sA += 16;
  }
  for (let k = 0; k < 4; k++) {
    const acc = v128.load(ACC4 + (<usize>k << 4));
    const wk = w + <usize>k * off, sk = ws + <usize>k * soff;
    store<f32>(y + <usize>k * ystep, b == nb ? hsumF32(acc) : tailQ4(wk, sk, a, e, xs, xsum, b, nb, acc, ones, m));
  }
}

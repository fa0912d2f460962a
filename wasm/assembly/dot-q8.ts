// q8_0 row dots: weights w (cols i8) with f32 scales ws (one per 32-block) against a prepared activation.
// Block b's exact int sum times (ws[b] * xs[b]) goes to lane b % 4 of an f32 accumulator, in every twin.
import { QK, RELAXED, FUSED_DOT, I16Dots, FusedDots } from './common';
import { extOff, xsOff } from './activation';
import { pairSum, finishSum, hsumI32, hsumF32, fence, fence2, onesI16 } from './simd-util';

/**
 * i32x4 whose lanes sum to block w . x. x0..x3 are the block's 64 ext bytes (activation.ts), loaded once and shared
 * by every row dotted with it: in the SIMD build x as i16 in order; in the relaxed build xp (x0, x1), xn (x2, x3).
 */
@inline function blockQ8<P>(w: usize, x0: v128, x1: v128, x2: v128, x3: v128, ones: v128): v128 {
  return blockQ8v<P>(v128.load(w), v128.load(w, 16), x0, x1, x2, x3, ones);
}

@inline function blockQ8At<P>(w: usize, e: usize, ones: v128): v128 {
  return blockQ8<P>(w, v128.load(e), v128.load(e, 16), v128.load(e, 32), v128.load(e, 48), ones);
}

/** Blocks from `b` to nb of one row, added to the lanes (l0, l1, l2) of `acc` (b % 4 == 0, nb - b < 4). */
@inline function tailQ8<P>(w: usize, ws: usize, e: usize, xs: usize, b: i32, nb: i32, acc: v128, ones: v128): f32 {
  let l0 = f32x4.extract_lane(acc, 0), l1 = f32x4.extract_lane(acc, 1), l2 = f32x4.extract_lane(acc, 2);
  for (; b < nb; b++) {
    const v = <f32>hsumI32(blockQ8At<P>(w + <usize>(b * QK), e + <usize>(b * 64), ones)) *
      (load<f32>(ws + (<usize>b << 2)) * load<f32>(xs + (<usize>b << 2)));
    if ((b & 3) == 0) l0 += v; else if ((b & 3) == 1) l1 += v; else l2 += v;
  }
  return (l0 + l2) + (l1 + f32x4.extract_lane(acc, 3));
}

export function dotQ8Simd(w: usize, ws: usize, a: usize, cols: i32): f32 {
  return RELAXED && FUSED_DOT ? dotQ8<FusedDots>(w, ws, a, cols) : dotQ8<I16Dots>(w, ws, a, cols);
}

@inline function dotQ8<P>(w: usize, ws: usize, a: usize, cols: i32): f32 {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  const e = a + extOff(cols);
  const ones = onesI16();
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const wp = w + <usize>(b * QK);
    const ep = e + <usize>(b * 64);
    const ab = pairSum(blockQ8At<P>(wp, ep, ones), blockQ8At<P>(wp + 32, ep + 64, ones));
    fence(ab);
    const s = finishSum(ab, pairSum(blockQ8At<P>(wp + 64, ep + 128, ones), blockQ8At<P>(wp + 96, ep + 192, ones)));
    const sc = f32x4.mul(v128.load(ws + (<usize>b << 2)), v128.load(xs + (<usize>b << 2)));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), sc));
    fence(acc);
  }
  return b == nb ? hsumF32(acc) : tailQ8<P>(w, ws, e, xs, b, nb, acc, ones);
}

/**
 * Block w . x from the block's weight vectors w0, w1 (see blockQ8). P = FusedDots (relaxed build): the xp and xn dots
 * accumulate in i32 with dot-adds and are subtracted once (each sum < 2^31), same integers as the i16 path's.
 */
@inline export function blockQ8v<P>(w0: v128, w1: v128, x0: v128, x1: v128, x2: v128, x3: v128, ones: v128): v128 {
  if (RELAXED && sizeof<P>() == 4) {
    const z = i32x4.splat(0);
    return i32x4.sub(i32x4.relaxed_dot_i8x16_i7x16_add_s(w1, x1, i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, x0, z)),
      i32x4.relaxed_dot_i8x16_i7x16_add_s(w1, x3, i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, x2, z)));
  } else if (RELAXED) {
    // dot(w, x) = dot(w, xp) - dot(w, xn) with xp, xn in 0..127: a valid 7-bit operand, so the relaxed dot is exact.
    // An i16 lane (a pair of products, |.| <= 2*127*128) of either dot and of their difference does not overflow.
    const d0 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w0, x0), i16x8.relaxed_dot_i8x16_i7x16_s(w0, x2));
    const d1 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w1, x1), i16x8.relaxed_dot_i8x16_i7x16_s(w1, x3));
    return i32x4.add(i32x4.dot_i16x8_s(d0, ones), i32x4.dot_i16x8_s(d1, ones));
  } else {
    const s0 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), x1));
    const s1 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), x3));
    return i32x4.add(s0, s1);
  }
}

/**
 * Two rows (wA, wB) against one activation: *yA, *yB; each value is exactly dotQ8Simd's. Pointers advance per
 * 4 blocks and every load uses a constant offset, which V8 folds into the address (a wasm i32 add it cannot).
 */
export function dot2Q8Simd(wA: usize, wB: usize, wsA: usize, wsB: usize, a: usize, cols: i32, yA: usize, yB: usize): void {
  if (RELAXED && FUSED_DOT) dot2Q8<FusedDots>(wA, wB, wsA, wsB, a, cols, yA, yB);
  else dot2Q8<I16Dots>(wA, wB, wsA, wsB, a, cols, yA, yB);
}

@inline function dot2Q8<P>(wA: usize, wB: usize, wsA: usize, wsB: usize, a: usize, cols: i32, yA: usize, yB: usize): void {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  const e = a + extOff(cols);
  const ones = onesI16();
  let accA = f32x4.splat(0);
  let accB = f32x4.splat(0);
  let pA = wA, pB = wB, pe = e, pwsA = wsA, pwsB = wsB, pxs = xs;
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    let x0 = v128.load(pe), x1 = v128.load(pe, 16), x2 = v128.load(pe, 32), x3 = v128.load(pe, 48);
    const a0 = blockQ8v<P>(v128.load(pA), v128.load(pA, 16), x0, x1, x2, x3, ones);
    const b0 = blockQ8v<P>(v128.load(pB), v128.load(pB, 16), x0, x1, x2, x3, ones);
    fence2(a0, b0);
    x0 = v128.load(pe, 64); x1 = v128.load(pe, 80); x2 = v128.load(pe, 96); x3 = v128.load(pe, 112);
    const abA = pairSum(a0, blockQ8v<P>(v128.load(pA, 32), v128.load(pA, 48), x0, x1, x2, x3, ones));
    const abB = pairSum(b0, blockQ8v<P>(v128.load(pB, 32), v128.load(pB, 48), x0, x1, x2, x3, ones));
    fence2(abA, abB);
    x0 = v128.load(pe, 128); x1 = v128.load(pe, 144); x2 = v128.load(pe, 160); x3 = v128.load(pe, 176);
    const a2 = blockQ8v<P>(v128.load(pA, 64), v128.load(pA, 80), x0, x1, x2, x3, ones);
    const b2 = blockQ8v<P>(v128.load(pB, 64), v128.load(pB, 80), x0, x1, x2, x3, ones);
    fence2(a2, b2);
    x0 = v128.load(pe, 192); x1 = v128.load(pe, 208); x2 = v128.load(pe, 224); x3 = v128.load(pe, 240);
    const sA = finishSum(abA, pairSum(a2, blockQ8v<P>(v128.load(pA, 96), v128.load(pA, 112), x0, x1, x2, x3, ones)));
    const sB = finishSum(abB, pairSum(b2, blockQ8v<P>(v128.load(pB, 96), v128.load(pB, 112), x0, x1, x2, x3, ones)));
    const xsv = v128.load(pxs);
    accA = f32x4.add(accA, f32x4.mul(f32x4.convert_i32x4_s(sA), f32x4.mul(v128.load(pwsA), xsv)));
    accB = f32x4.add(accB, f32x4.mul(f32x4.convert_i32x4_s(sB), f32x4.mul(v128.load(pwsB), xsv)));
    fence2(accA, accB);
    pA += 128; pB += 128; pe += 256; pwsA += 16; pwsB += 16; pxs += 16;
  }
  store<f32>(yA, b == nb ? hsumF32(accA) : tailQ8<P>(wA, wsA, e, xs, b, nb, accA, ones));
  store<f32>(yB, b == nb ? hsumF32(accB) : tailQ8<P>(wB, wsB, e, xs, b, nb, accB, ones));
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

// The four rows' f32x4 accumulators of matvec4Q8Simd live in memory: with 16 xmm registers they would spill anyway.
const ACC4: usize = memory.data(64, 16);

/**
 * Mat-vec y (4q) = W (4q, cols) @ a, rows r, r + q, r + 2q, r + 3q together (r < q): four sequential streams the
 * hardware prefetchers follow, and each activation load feeds four rows. Each value is exactly dotQ8Simd's.
 */
export function matvec4Q8Simd(w: usize, ws: usize, q: i32, cols: i32, a: usize, y: usize): void {
  if (RELAXED && FUSED_DOT) matvec4Q8<FusedDots>(w, ws, q, cols, a, y);
  else matvec4Q8<I16Dots>(w, ws, q, cols, a, y);
}

@inline function matvec4Q8<P>(w: usize, ws: usize, q: i32, cols: i32, a: usize, y: usize): void {
  const off = <usize>q * <usize>cols; // bytes between the four rows' quants; their scales are off / 8 apart
  for (let r = 0; r < q; r++) {
    const o = <usize>r * <usize>cols;
    dot4Q8<P>(w + o, ws + (o >> 3), off, off >> 3, a, cols, y + (<usize>r << 2), <usize>q << 2);
  }
}

/** Four rows w + k*off (scales ws + k*soff), k = 0..3, at any distance, against `a`: y + k*ystep; each dotQ8Simd's value. */
export function dot4RowsQ8Simd(w: usize, ws: usize, off: usize, soff: usize, a: usize, cols: i32, y: usize, ystep: usize): void {
  if (RELAXED && FUSED_DOT) dot4Q8<FusedDots>(w, ws, off, soff, a, cols, y, ystep);
  else dot4Q8<I16Dots>(w, ws, off, soff, a, cols, y, ystep);
}

@inline function dot4Q8<P>(w: usize, ws: usize, off: usize, soff: usize, a: usize, cols: i32, y: usize, ystep: usize): void {
  const nb = cols / QK;
  const xs = a + xsOff(cols);
  const e = a + extOff(cols);
  const ones = onesI16();
  const z = f32x4.splat(0);
  v128.store(ACC4, z); v128.store(ACC4, z, 16); v128.store(ACC4, z, 32); v128.store(ACC4, z, 48);
  // one pointer per stream: the other three rows are constant offsets away (fewer registers, no spills)
  const off2 = off << 1, off3 = off * 3, soff2 = soff << 1, soff3 = soff * 3;
  let pA = w, pe = e, pxs = xs, sA = ws;
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const pB = pA + off, pC = pA + off2, pD = pA + off3, sB = sA + soff, sC = sA + soff2, sD = sA + soff3;
    let x0 = v128.load(pe), x1 = v128.load(pe, 16), x2 = v128.load(pe, 32), x3 = v128.load(pe, 48);
    let rA = blockQ8v<P>(v128.load(pA), v128.load(pA, 16), x0, x1, x2, x3, ones);
    let rB = blockQ8v<P>(v128.load(pB), v128.load(pB, 16), x0, x1, x2, x3, ones);
    let rC = blockQ8v<P>(v128.load(pC), v128.load(pC, 16), x0, x1, x2, x3, ones);
    let rD = blockQ8v<P>(v128.load(pD), v128.load(pD, 16), x0, x1, x2, x3, ones);
    fence2(rA, rB); fence2(rC, rD);
    x0 = v128.load(pe, 64); x1 = v128.load(pe, 80); x2 = v128.load(pe, 96); x3 = v128.load(pe, 112);
    const abA = pairSum(rA, blockQ8v<P>(v128.load(pA, 32), v128.load(pA, 48), x0, x1, x2, x3, ones));
    const abB = pairSum(rB, blockQ8v<P>(v128.load(pB, 32), v128.load(pB, 48), x0, x1, x2, x3, ones));
    const abC = pairSum(rC, blockQ8v<P>(v128.load(pC, 32), v128.load(pC, 48), x0, x1, x2, x3, ones));
    const abD = pairSum(rD, blockQ8v<P>(v128.load(pD, 32), v128.load(pD, 48), x0, x1, x2, x3, ones));
    fence2(abA, abB); fence2(abC, abD);
    x0 = v128.load(pe, 128); x1 = v128.load(pe, 144); x2 = v128.load(pe, 160); x3 = v128.load(pe, 176);
    rA = blockQ8v<P>(v128.load(pA, 64), v128.load(pA, 80), x0, x1, x2, x3, ones);
    rB = blockQ8v<P>(v128.load(pB, 64), v128.load(pB, 80), x0, x1, x2, x3, ones);
    rC = blockQ8v<P>(v128.load(pC, 64), v128.load(pC, 80), x0, x1, x2, x3, ones);
    rD = blockQ8v<P>(v128.load(pD, 64), v128.load(pD, 80), x0, x1, x2, x3, ones);
    fence2(rA, rB); fence2(rC, rD);
    x0 = v128.load(pe, 192); x1 = v128.load(pe, 208); x2 = v128.load(pe, 224); x3 = v128.load(pe, 240);
    const tA = finishSum(abA, pairSum(rA, blockQ8v<P>(v128.load(pA, 96), v128.load(pA, 112), x0, x1, x2, x3, ones)));
    const tB = finishSum(abB, pairSum(rB, blockQ8v<P>(v128.load(pB, 96), v128.load(pB, 112), x0, x1, x2, x3, ones)));
    fence2(tA, tB);
    const tC = finishSum(abC, pairSum(rC, blockQ8v<P>(v128.load(pC, 96), v128.load(pC, 112), x0, x1, x2, x3, ones)));
    const tD = finishSum(abD, pairSum(rD, blockQ8v<P>(v128.load(pD, 96), v128.load(pD, 112), x0, x1, x2, x3, ones)));
    const xsv = v128.load(pxs);
    v128.store(ACC4, f32x4.add(v128.load(ACC4), f32x4.mul(f32x4.convert_i32x4_s(tA), f32x4.mul(v128.load(sA), xsv))));
    v128.store(ACC4, f32x4.add(v128.load(ACC4, 16), f32x4.mul(f32x4.convert_i32x4_s(tB), f32x4.mul(v128.load(sB), xsv))), 16);
    v128.store(ACC4, f32x4.add(v128.load(ACC4, 32), f32x4.mul(f32x4.convert_i32x4_s(tC), f32x4.mul(v128.load(sC), xsv))), 32);
    v128.store(ACC4, f32x4.add(v128.load(ACC4, 48), f32x4.mul(f32x4.convert_i32x4_s(tD), f32x4.mul(v128.load(sD), xsv))), 48);
    pA += 128; pe += 256; pxs += 16; sA += 16;
  }
  for (let k = 0; k < 4; k++) {
    const acc = v128.load(ACC4 + (<usize>k << 4));
    const wk = w + <usize>k * off, sk = ws + <usize>k * soff;
    store<f32>(y + <usize>k * ystep, b == nb ? hsumF32(acc) : tailQ8<P>(wk, sk, e, xs, b, nb, acc, ones));
  }
}

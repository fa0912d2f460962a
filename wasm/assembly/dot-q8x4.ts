// q8_0 weights repacked at load ("q8_0x4", dtype code DT_Q8_0X4), the relaxed build's, like q4_0x4 (dot-q4x4.ts):
// 1. Within each group of four consecutive blocks of a row (128 bytes) the words are transposed: the vector at 32k
//    holds bytes 4k..4k+3 of block 0, 1, 2, 3 and the vector at 32k + 16 bytes 16 + 4k.. of each (k = 0..3); a row's
//    last nb % 4 blocks stay as ggml stores them. A dot-add of such a vector sums four bytes of one block into each
//    i32 lane, so a group's eight vectors add up to the four block sums in lanes 0..3, where ggml's layout needs a
//    horizontal reduction per block (pairSum/finishSum in dot-q8.ts). The activation's xp/xn (or qx, UnsignedDots)
//    are arranged the same way once per token (arrangeQ8x4).
// 2. On UNSIGNED_DOTS engines the grouped bytes are stored as w + 128 (the dot-add's unsigned operand): the kernel
//    whose mode is fixed when its weights are packed reads them; the scalar twins and getRowQ8x4 subtract 128 back.
// Rows stay apart (no quads as in q4_0x4): interleaved, granite-shaped q8_0 decoded 0.90x and prefilled 1.05x
// against ggml's layout end to end, rows apart 1.03x and 1.09x (wasm/dev/ab-e2e-checkouts.mts). The mat-vec reads
// four rows a quarter of the matrix apart; the four-token kernel one row, contiguous.
// Every value equals dotQ8Simd's on the unpacked row bit for bit: the block sums are exact integers and the f32
// order is the same (lane b % 4). The packing is one way.
import { QK, RELAXED, FUSED_DOT, UNSIGNED_DOTS, I16Dots, FusedDots, UnsignedDots } from './common';
import { extOff, xsOff, xsumOff } from './activation';
import { hsumF32, fence, fence2, onesI16, lanesFrom, laneAdd, lanesSum, ACC8 } from './simd-util';
import { transposeWords } from './dot-q4x4';

// A row's groups are GROUP bytes apart, its scales GROUP / 8 (16 bytes: four f32).
const GROUP: usize = 128;

/** The word transpose of one group (four blocks at src, 32 bytes apart) to dst. */
@inline function transposeGroup(src: usize, dst: usize): void {
  transposeWords(src, 32, dst, 32);
  transposeWords(src + 16, 32, dst + 16, 32);
}

/**
 * In place: rows x cols q8_0 quants from ggml's layout to q8_0x4 (the scales stay as they are). On UNSIGNED_DOTS
 * engines the grouped bytes are also stored as w + 128 (w ^ 0x80), the dot-add's unsigned operand (UnsignedDots below).
 */
export function repackQ8x4(w: usize, rows: i32, cols: i32): void {
  const groups = (cols / QK) >> 2;
  const flip = i8x16.splat(-128);
  for (let r = 0; r < rows; r++) {
    let p = w + <usize>r * <usize>cols;
    for (let g = 0; g < groups; g++, p += GROUP) {
      transposeGroup(p, p);
      if (UNSIGNED_DOTS) for (let v: usize = 0; v < GROUP; v += 16) v128.store(p + v, v128.xor(v128.load(p + v), flip));
    }
  }
}

const ARRANGE: usize = memory.data(256, 16);

/**
 * The q8_0x4 activation operands of one prepared token into its ext area, 256 bytes per group of four blocks:
 * [xp of the group, transposed as the weights (128)][xn likewise (128)] from the xp, xn per block already there
 * (activation.ts), or on UNSIGNED_DOTS engines [qx transposed (128)][-128 x the four block sums (16)].
 */
export function arrangeQ8x4(a: usize, cols: i32): void {
  const groups = (cols / QK) >> 2;
  let e = a + extOff(cols);
  if (UNSIGNED_DOTS) { // [qx, transposed (128)][-128 x the four block sums of qx, i32 (16)]: see UnsignedDots below
    const sums = a + xsumOff(cols);
    for (let g = 0; g < groups; g++, e += 256) {
      transposeGroup(a + <usize>(g * 4 * QK), e);
      v128.store(e, i32x4.mul(v128.load(sums + (<usize>g << 4)), i32x4.splat(-128)), 128);
    }
    return;
  }
  for (let g = 0; g < groups; g++, e += 256) {
    transposeWords(e, 64, ARRANGE, 32); // xp, elements 0..15 of the four blocks
    transposeWords(e + 16, 64, ARRANGE + 16, 32); // xp, 16..31
    transposeWords(e + 32, 64, ARRANGE + 128, 32); // xn
    transposeWords(e + 48, 64, ARRANGE + 144, 32);
    memory.copy(e, ARRANGE, 256);
  }
}

/** Weight byte j of block b of a q8_0x4 row `w` (blocks past the last whole group are ggml's). */
@inline export function packedByteQ8(w: usize, b: i32, j: i32, groups: i32): i32 {
  if ((b >> 2) >= groups) return <i32>load<i8>(w + <usize>(b * QK + j));
  const p = w + <usize>(b >> 2) * GROUP + <usize>(((j & 15) >> 2) * 32 + (j >> 4) * 16 + (b & 3) * 4 + (j & 3));
  return UNSIGNED_DOTS ? <i32>load<u8>(p) - 128 : <i32>load<i8>(p); // stored as w + 128 there (repackQ8x4)
}

/** Blocks b..nb-1 of a packed row, one at a time in scalar code, added to the lanes of acc (lane b % 4); the lane sum. */
function blocksQ8x4Scalar(w: usize, ws: usize, a: usize, cols: i32, b: i32, acc: v128): f32 {
  lanesFrom(acc);
  for (const nb = cols / QK; b < nb; b++) {
    laneAdd(b, <f32>blockSumQ8x4(w, b, a, nb >> 2) * (load<f32>(ws + (<usize>b << 2)) * load<f32>(a + xsOff(cols) + (<usize>b << 2))));
  }
  return lanesSum();
}

/** dotQ8Scalar's exact sum of block b, each weight byte where the packing put it, against qx at a. */
@inline function blockSumQ8x4(w: usize, b: i32, a: usize, groups: i32): i32 {
  let s = 0;
  for (let j = 0; j < QK; j++) s += packedByteQ8(w, b, j, groups) * <i32>load<i8>(a + <usize>(b * QK + j));
  return s;
}

/** The scalar twin: dotQ8Scalar's arithmetic on the packed layout. */
export function dotQ8x4Scalar(w: usize, ws: usize, a: usize, cols: i32): f32 {
  return blocksQ8x4Scalar(w, ws, a, cols, 0, f32x4.splat(0));
}

@inline function tailQ8x4(w: usize, ws: usize, a: usize, cols: i32, b: i32, acc: v128): f32 {
  return b == cols / QK ? hsumF32(acc) : blocksQ8x4Scalar(w, ws, a, cols, b, acc);
}

// One weight vector w against its activation pair xp, xn: the fused path (P = FusedDots) keeps two i32 sums, p of
// the xp dot-adds and n of the xn ones, joined as p - n per group; the i16 path widens each vector's difference
// (|pair| <= 2 * 128 * 127, exact in i16) into p at once and leaves n at zero.
@inline function stepP<P>(p: v128, w: v128, xp: v128, xn: v128, ones: v128): v128 {
  if (sizeof<P>() >= 4) return i32x4.relaxed_dot_i8x16_i7x16_add_s(w, xp, p);
  return i32x4.add(p, i32x4.dot_i16x8_s(i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w, xp), i16x8.relaxed_dot_i8x16_i7x16_s(w, xn)), ones));
}

@inline function stepN<P>(n: v128, w: v128, xn: v128): v128 {
  return sizeof<P>() >= 4 ? i32x4.relaxed_dot_i8x16_i7x16_add_s(w, xn, n) : n;
}

/**
 * P = UnsignedDots (UNSIGNED_DOTS engines): the weights are stored as wu = w + 128 (repackQ8x4), the dot-add's
 * unsigned operand, against qx itself: dot(qx, wu) = w . x + 128 sum(qx), and a group's sums start from
 * -128 sum(qx) per block (arrangeQ8x4 stores them beside qx), so each weight vector takes one dot-add per token where
 * xp and xn took two, and nothing depends on the row but the weights.
 */
@inline function stepU(p: v128, x: v128, wu: v128): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, wu, p);
}

/** acc + (p - n) * (wsv * xsv): a (row, token) group's four block sums, scaled, into the lanes of acc (n unused for UnsignedDots, whose p starts corrected). */
@inline function scaleGroup<P>(acc: v128, p: v128, n: v128, wsv: v128, xsv: v128): v128 {
  const s = sizeof<P>() == 8 ? p : i32x4.sub(p, n);
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(wsv, xsv)));
}

/** One packed row . one prepared activation (arranged by arrangeQ8x4). */
export function dotQ8x4Simd(w: usize, ws: usize, a: usize, cols: i32): f32 {
  if (!RELAXED) return dotQ8x4Scalar(w, ws, a, cols); // the packed layout is the relaxed build's
  if (UNSIGNED_DOTS) return dotQ8x4<UnsignedDots>(w, ws, a, cols);
  return FUSED_DOT ? dotQ8x4<FusedDots>(w, ws, a, cols) : dotQ8x4<I16Dots>(w, ws, a, cols);
}

@inline function dotQ8x4<P>(w: usize, ws: usize, a: usize, cols: i32): f32 {
  const groups = (cols / QK) >> 2;
  const ones = onesI16();
  let acc = f32x4.splat(0);
  let pw = w, px = a + extOff(cols), pws = ws, pxs = a + xsOff(cols);
  for (let g = 0; g < groups; g++) {
    let p = i32x4.splat(0), n = i32x4.splat(0);
    if (sizeof<P>() == 8) {
      p = v128.load(px, 128);
      for (let v: usize = 0; v < 128; v += 16) p = stepU(p, v128.load(px + v), v128.load(pw + v));
    } else {
      for (let v: usize = 0; v < 128; v += 16) {
        const wv = v128.load(pw + v), xn = v128.load(px + v, 128);
        p = stepP<P>(p, wv, v128.load(px + v), xn, ones);
        n = stepN<P>(n, wv, xn);
      }
    }
    acc = scaleGroup<P>(acc, p, n, v128.load(pws), v128.load(pxs));
    fence(acc);
    pw += GROUP; px += 256; pws += 16; pxs += 16;
  }
  return tailQ8x4(w, ws, a, cols, groups << 2, acc);
}

/** Packed row r of the matrix at (wq, ws) . one prepared activation, for code that walks rows by index. */
export function dotRowQ8x4(wq: usize, ws: usize, r: i32, cols: i32, a: usize, simd: bool): f32 {
  const w = wq + <usize>r * <usize>cols, s = ws + (<usize>r * <usize>cols >> 3);
  return simd ? dotQ8x4Simd(w, s, a, cols) : dotQ8x4Scalar(w, s, a, cols);
}

/** Mat-vec y (rows) = W (rows, cols) @ a, W packed: rows r, r + q, r + 2q, r + 3q together (q = rows / 4), four streams. */
export function matvecQ8x4(w: usize, ws: usize, rows: i32, cols: i32, a: usize, y: usize, simd: bool): void {
  let done = 0;
  if (RELAXED) { // (a constant: the plain SIMD build compiles none of this)
    if (simd) {
      const q = rows >> 2;
      const off = <usize>q * <usize>cols;
      for (let r = 0; r < q; r++) {
        const o = <usize>r * <usize>cols;
        if (UNSIGNED_DOTS) dot4RowsQ8x4<UnsignedDots>(w + o, ws + (o >> 3), off, off >> 3, a, cols, y + (<usize>r << 2), <usize>q << 2);
        else if (FUSED_DOT) dot4RowsQ8x4<FusedDots>(w + o, ws + (o >> 3), off, off >> 3, a, cols, y + (<usize>r << 2), <usize>q << 2);
        else dot4RowsQ8x4<I16Dots>(w + o, ws + (o >> 3), off, off >> 3, a, cols, y + (<usize>r << 2), <usize>q << 2);
      }
      done = q << 2;
    }
  }
  for (let r = done; r < rows; r++) store<f32>(y + (<usize>r << 2), dotRowQ8x4(w, ws, r, cols, a, simd));
}

/** Rows w + k*off (scales ws + k*soff), k = 0..3, against `a`: y + k*ystep. */
@inline function dot4RowsQ8x4<P>(w: usize, ws: usize, off: usize, soff: usize, a: usize, cols: i32, y: usize, ystep: usize): void {
  const groups = (cols / QK) >> 2;
  const ones = onesI16();
  let aA = f32x4.splat(0), aB = f32x4.splat(0), aC = f32x4.splat(0), aD = f32x4.splat(0);
  const off2 = off << 1, off3 = off * 3;
  let pw = w, px = a + extOff(cols), pws = ws, pxs = a + xsOff(cols);
  for (let g = 0; g < groups; g++) {
    let pA = i32x4.splat(0), pB = i32x4.splat(0), pC = i32x4.splat(0), pD = i32x4.splat(0);
    let nA = i32x4.splat(0), nB = i32x4.splat(0), nC = i32x4.splat(0), nD = i32x4.splat(0);
    if (sizeof<P>() == 8) {
      pA = v128.load(px, 128); pB = pA; pC = pA; pD = pA;
      for (let v: usize = 0; v < 128; v += 16) { // one activation vector serves the four rows
        const x = v128.load(px + v);
        pA = stepU(pA, x, v128.load(pw + v)); pB = stepU(pB, x, v128.load(pw + off + v));
        pC = stepU(pC, x, v128.load(pw + off2 + v)); pD = stepU(pD, x, v128.load(pw + off3 + v));
        fence2(pA, pC);
      }
    } else for (let v: usize = 0; v < 128; v += 16) { // one activation vector pair serves the four rows
      const xp = v128.load(px + v), xn = v128.load(px + v, 128);
      let wv = v128.load(pw + v);
      pA = stepP<P>(pA, wv, xp, xn, ones); nA = stepN<P>(nA, wv, xn);
      wv = v128.load(pw + off + v);
      pB = stepP<P>(pB, wv, xp, xn, ones); nB = stepN<P>(nB, wv, xn);
      wv = v128.load(pw + off2 + v);
      pC = stepP<P>(pC, wv, xp, xn, ones); nC = stepN<P>(nC, wv, xn);
      wv = v128.load(pw + off3 + v);
      pD = stepP<P>(pD, wv, xp, xn, ones); nD = stepN<P>(nD, wv, xn);
      fence2(pA, pC);
    }
    const xsv = v128.load(pxs);
    aA = scaleGroup<P>(aA, pA, nA, v128.load(pws), xsv);
    aB = scaleGroup<P>(aB, pB, nB, v128.load(pws + soff), xsv);
    aC = scaleGroup<P>(aC, pC, nC, v128.load(pws + 2 * soff), xsv);
    aD = scaleGroup<P>(aD, pD, nD, v128.load(pws + 3 * soff), xsv);
    fence2(aA, aC);
    pw += GROUP; px += 256; pws += 16; pxs += 16;
  }
  const b = groups << 2;
  store<f32>(y, tailQ8x4(w, ws, a, cols, b, aA));
  store<f32>(y + ystep, tailQ8x4(w + off, ws + soff, a, cols, b, aB));
  store<f32>(y + 2 * ystep, tailQ8x4(w + off2, ws + 2 * soff, a, cols, b, aC));
  store<f32>(y + 3 * ystep, tailQ8x4(w + off3, ws + 3 * soff, a, cols, b, aD));
}

/**
 * Packed row r of the matrix at (wq, ws) against four prepared tokens a + t*stride: y[t * ystep]. Each weight
 * vector is loaded once for the four tokens (prefill's reuse of a weight block across tokens).
 */
export function dotRow4TokQ8x4(wq: usize, ws: usize, r: i32, cols: i32, a: usize, stride: i32, y: usize, ystep: usize): void {
  const w = wq + <usize>r * <usize>cols, s = ws + (<usize>r * <usize>cols >> 3);
  if (RELAXED && UNSIGNED_DOTS) row4TokQ8x4<UnsignedDots>(w, s, a, stride, cols, y, ystep);
  else if (RELAXED && FUSED_DOT) row4TokQ8x4<FusedDots>(w, s, a, stride, cols, y, ystep);
  else if (RELAXED) row4TokQ8x4<I16Dots>(w, s, a, stride, cols, y, ystep);
  else for (let t = 0; t < 4; t++) store<f32>(y + <usize>t * ystep, dotQ8x4Scalar(w, s, a + <usize>(t * stride), cols));
}

@inline function row4TokQ8x4<P>(w: usize, ws: usize, a: usize, stride: i32, cols: i32, y: usize, ystep: usize): void {
  const groups = (cols / QK) >> 2;
  const ones = onesI16();
  const st = <usize>stride;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let pw = w, pws = ws, px = a + extOff(cols), pxs = a + xsOff(cols); // token 0's; the others st apart
  for (let g = 0; g < groups; g++) {
    let p0 = i32x4.splat(0), p1 = i32x4.splat(0), p2 = i32x4.splat(0), p3 = i32x4.splat(0);
    let n0 = i32x4.splat(0), n1 = i32x4.splat(0), n2 = i32x4.splat(0), n3 = i32x4.splat(0);
    if (sizeof<P>() == 8) { p0 = v128.load(px, 128); p1 = v128.load(px + st, 128); p2 = v128.load(px + 2 * st, 128); p3 = v128.load(px + 3 * st, 128); }
    for (let v: usize = 0; v < 128; v += 16) {
      const wv = v128.load(pw + v);
      const x0 = px + v, x1 = x0 + st, x2 = x0 + 2 * st, x3 = x0 + 3 * st;
      if (sizeof<P>() == 8) {
        p0 = stepU(p0, v128.load(x0), wv); p1 = stepU(p1, v128.load(x1), wv);
        p2 = stepU(p2, v128.load(x2), wv); p3 = stepU(p3, v128.load(x3), wv);
      } else {
        const xn0 = v128.load(x0, 128), xn1 = v128.load(x1, 128), xn2 = v128.load(x2, 128), xn3 = v128.load(x3, 128);
        p0 = stepP<P>(p0, wv, v128.load(x0), xn0, ones); n0 = stepN<P>(n0, wv, xn0);
        p1 = stepP<P>(p1, wv, v128.load(x1), xn1, ones); n1 = stepN<P>(n1, wv, xn1);
        p2 = stepP<P>(p2, wv, v128.load(x2), xn2, ones); n2 = stepN<P>(n2, wv, xn2);
        p3 = stepP<P>(p3, wv, v128.load(x3), xn3, ones); n3 = stepN<P>(n3, wv, xn3);
      }
      fence2(p0, p2);
    }
    const wsv = v128.load(pws);
    a0 = scaleGroup<P>(a0, p0, n0, wsv, v128.load(pxs));
    a1 = scaleGroup<P>(a1, p1, n1, wsv, v128.load(pxs + st));
    a2 = scaleGroup<P>(a2, p2, n2, wsv, v128.load(pxs + 2 * st));
    a3 = scaleGroup<P>(a3, p3, n3, wsv, v128.load(pxs + 3 * st));
    fence2(a0, a2);
    pw += GROUP; pws += 16; px += 256; pxs += 16;
  }
  const b = groups << 2;
  store<f32>(y, tailQ8x4(w, ws, a, cols, b, a0));
  store<f32>(y + ystep, tailQ8x4(w, ws, a + st, cols, b, a1));
  store<f32>(y + 2 * ystep, tailQ8x4(w, ws, a + 2 * st, cols, b, a2));
  store<f32>(y + 3 * ystep, tailQ8x4(w, ws, a + 3 * st, cols, b, a3));
}

/**
 * UNSIGNED_DOTS engines: two packed rows, A (wa, sa) and B (wb, sb), against four prepared tokens a + t*stride:
 * ya[t * ystep] and yb[t * ystep]. Each activation vector serves both rows, so a vector of weights and tokens takes
 * six loads for eight dot-adds (row4TokQ8x4: five for four) and eight independent sums run at once. The rows should
 * be two sequential streams (a gate row and its up row, or rows half a matrix apart): adjacent rows interleave two
 * streams in one page, which the hardware prefetchers follow badly. Same values as dotRow4TokQ8x4 per row, bit for bit.
 */
export function dotRows2Tok4Q8x4(wa: usize, sa: usize, wb: usize, sb: usize, cols: i32, a: usize, stride: i32, ya: usize, yb: usize, ystep: usize): void {
  if (!RELAXED) return; // (a constant: the plain SIMD build compiles none of this; matmul calls it only on UNSIGNED_DOTS)
  const groups = (cols / QK) >> 2;
  const st = <usize>stride;
  for (let k: usize = 0; k < 128; k += 16) v128.store(ACC8 + k, f32x4.splat(0));
  const w1 = wb - wa, s1 = sb - sa; // row B from row A's pointers (one pointer each, fewer registers in the loop)
  let pw = wa, pws = sa, px = a + extOff(cols), pxs = a + xsOff(cols); // token 0's; the others st apart
  for (let g = 0; g < groups; g++) {
    let p0 = v128.load(px, 128), p1 = v128.load(px + st, 128), p2 = v128.load(px + 2 * st, 128), p3 = v128.load(px + 3 * st, 128);
    let q0 = p0, q1 = p1, q2 = p2, q3 = p3;
    for (let v: usize = 0; v < 128; v += 16) {
      const ua = v128.load(pw + v), ub = v128.load(pw + w1 + v);
      let x = v128.load(px + v);
      p0 = stepU(p0, x, ua); q0 = stepU(q0, x, ub);
      x = v128.load(px + st + v);
      p1 = stepU(p1, x, ua); q1 = stepU(q1, x, ub);
      x = v128.load(px + 2 * st + v);
      p2 = stepU(p2, x, ua); q2 = stepU(q2, x, ub);
      x = v128.load(px + 3 * st + v);
      p3 = stepU(p3, x, ua); q3 = stepU(q3, x, ub);
    }
    const va = v128.load(pws), vb = v128.load(pws + s1);
    let xs = v128.load(pxs);
    v128.store(ACC8, scaleGroup<UnsignedDots>(v128.load(ACC8), p0, p0, va, xs));
    v128.store(ACC8, scaleGroup<UnsignedDots>(v128.load(ACC8, 64), q0, q0, vb, xs), 64);
    xs = v128.load(pxs + st);
    v128.store(ACC8, scaleGroup<UnsignedDots>(v128.load(ACC8, 16), p1, p1, va, xs), 16);
    v128.store(ACC8, scaleGroup<UnsignedDots>(v128.load(ACC8, 80), q1, q1, vb, xs), 80);
    xs = v128.load(pxs + 2 * st);
    v128.store(ACC8, scaleGroup<UnsignedDots>(v128.load(ACC8, 32), p2, p2, va, xs), 32);
    v128.store(ACC8, scaleGroup<UnsignedDots>(v128.load(ACC8, 96), q2, q2, vb, xs), 96);
    xs = v128.load(pxs + 3 * st);
    v128.store(ACC8, scaleGroup<UnsignedDots>(v128.load(ACC8, 48), p3, p3, va, xs), 48);
    v128.store(ACC8, scaleGroup<UnsignedDots>(v128.load(ACC8, 112), q3, q3, vb, xs), 112);
    pw += GROUP; pws += 16; px += 256; pxs += 16;
  }
  const b = groups << 2;
  for (let t: usize = 0; t < 4; t++) {
    store<f32>(ya + t * ystep, tailQ8x4(wa, sa, a + t * st, cols, b, v128.load(ACC8 + (t << 4))));
    store<f32>(yb + t * ystep, tailQ8x4(wb, sb, a + t * st, cols, b, v128.load(ACC8 + 64 + (t << 4))));
  }
}

// q4_0 weights repacked at load ("q4_0x4", dtype code DT_Q4_0X4), in two steps, both in place:
// 1. Within each group of four consecutive blocks of a row (64 bytes), the 16-byte vector k holds bytes 4k..4k+3 of
//    block 0, 1, 2, 3 (a 4x4 transpose of 32-bit words); a row's last nb % 4 blocks stay as ggml stores them. Why: a
//    relaxed dot of one such vector gives i16 lanes 2i, 2i+1 that belong to block i alone, so the four vectors of a
//    group add up in i16 (exact: |lane| <= 4 * 2 * 2 * 15 * 128 = 30720) and one widening gives the four block sums
//    in lanes 0..3, where ggml's layout needs a horizontal reduction per block. The activation side is arranged the
//    same way once per token (activation.ts, `ext`).
// 2. Where a row is whole groups (cols % 128 == 0), rows are interleaved four at a time ("quads": rows 4i..4i+3,
//    the last rows % 4 stay apart): a quad's 4 * rowBytes hold group 0 of its rows 0, 1, 2, 3, then group 1 of each,
//    and so on, and its scales likewise (16 bytes per row and group). Why: the mat-vec reads the four rows of a quad
//    together as one sequential stream, which the hardware prefetchers follow at full speed; four rows a quarter of
//    the matrix apart (the layout before) were four streams, and out of cache the kernel waited on memory
//    (granite's expert FFN 1.2-1.3x, wasm/dev/ab-ffn-builds.mts). A row of a quad is then its first group's address
//    and a group stride of 256 bytes (64 for a row apart), its scales at a quarter of both (rowOffQ4x4, groupStrideQ4x4).
// Every value equals dotQ4Simd's on the unpacked row bit for bit: the block sums are exact integers and the f32
// order is the same (lane b % 4). The packing is one way: nothing reads ggml's layout back out of a packed matrix.
import { QK, RELAXED, FUSED_DOT, UNSIGNED_DOTS, I16Dots, FusedDots } from './common';
import { extOff, xsOff, xsumOff } from './activation';
import { hsumF32, fence, fence2, nibbleMask, lanesFrom, laneAdd, lanesSum, ACC8 } from './simd-util';

/** The 4x4 transpose of 32-bit words: vectors at src + k*sstep (k = 0..3) -> dst + k*dstep, vector k = word k of each. */
@inline export function transposeWords(src: usize, sstep: usize, dst: usize, dstep: usize): void {
  const a = v128.load(src), b = v128.load(src + sstep), c = v128.load(src + 2 * sstep), d = v128.load(src + 3 * sstep);
  const t0 = v128.shuffle<i32>(a, b, 0, 4, 1, 5), t1 = v128.shuffle<i32>(a, b, 2, 6, 3, 7);
  const t2 = v128.shuffle<i32>(c, d, 0, 4, 1, 5), t3 = v128.shuffle<i32>(c, d, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<i32>(t0, t2, 0, 1, 4, 5));
  v128.store(dst + dstep, v128.shuffle<i32>(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * dstep, v128.shuffle<i32>(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * dstep, v128.shuffle<i32>(t1, t3, 2, 3, 6, 7));
}

/** Rows of a rows x cols matrix that are interleaved in quads (step 2 above): the first rows & ~3, or none. */
@inline export function quadRows(rows: i32, cols: i32): i32 {
  return (cols & 127) == 0 ? rows & ~3 : 0;
}

/** Byte offset of packed row r's first group in the quants (its scales: this >> 2 from the scales' start). */
@inline export function rowOffQ4x4(r: i32, rows: i32, cols: i32): usize {
  const rb = <usize>(cols >> 1);
  return r < quadRows(rows, cols) ? <usize>(r & ~3) * rb + (<usize>(r & 3) << 6) : <usize>r * rb;
}

/** Bytes from one group of packed row r to its next: 256 in a quad (its four rows' groups in turn), else 64. */
@inline export function groupStrideQ4x4(r: i32, rows: i32, cols: i32): usize {
  return r < quadRows(rows, cols) ? 256 : 64;
}

/** Scratch bytes repackQ4x4 needs: one quad's quants. */
export function repackScratchQ4x4(cols: i32): i32 {
  return (cols >> 1) << 2;
}

/** In place: one quad's f32 scales (4 rows of sb bytes at s) interleaved, 16 bytes per row and group (scratch >= 4 * sb). */
function interleaveQuadScales(s: usize, sb: usize, groups: i32, scratch: usize): void {
  memory.copy(scratch, s, sb << 2);
  for (let k: usize = 0; k < 4; k++) {
    for (let g = 0; g < groups; g++) v128.store(s + (<usize>g << 6) + (k << 4), v128.load(scratch + k * sb + (<usize>g << 4)));
  }
}

/** In place: rows x cols q4_0 quants (cols / 2 bytes per row) and their f32 scales from ggml's layout to q4_0x4. */
export function repackQ4x4(w: usize, ws: usize, rows: i32, cols: i32, scratch: usize): void {
  const rb = <usize>(cols >> 1), sb = rb >> 2;
  const groups = (cols / QK) >> 2;
  const quads = quadRows(rows, cols);
  for (let r = 0; r < quads; r += 4) { // quads: each row's groups transposed on their way to their interleaved places
    const q = w + <usize>r * rb, s = ws + <usize>r * sb;
    memory.copy(scratch, q, rb << 2);
    for (let k: usize = 0; k < 4; k++) {
      for (let g = 0; g < groups; g++) transposeWords(scratch + k * rb + (<usize>g << 6), 16, q + (<usize>g << 8) + (k << 6), 16);
    }
    interleaveQuadScales(s, sb, groups, scratch);
  }
  for (let r = quads; r < rows; r++) { // rows apart: the transpose in place
    let p = w + <usize>r * rb;
    for (let g = 0; g < groups; g++, p += 64) transposeWords(p, 16, p, 16);
  }
}

/**
 * The q4_0x4 activation operands of one prepared token (`a`, cols elements) into its ext area: per group of four
 * blocks 128 bytes, [lo_0 hi_0 lo_1 hi_1 .. lo_3 hi_3], lo_k lane i = qx of block i, elements 4k..4k+3; hi_k the
 * same for elements 16 + 4k... (the nibbles' partners in ggml's byte order). The same transpose as the weights.
 */
export function arrangeQ4x4(a: usize, cols: i32): void {
  const groups = (cols / QK) >> 2;
  let p = a, e = a + extOff(cols);
  for (let g = 0; g < groups; g++, p += 128, e += 128) {
    transposeWords(p, 32, e, 32); // the low halves (elements 0..15) of the four blocks
    transposeWords(p + 16, 32, e + 16, 32); // the high ones
  }
}

/** Byte j of block b of a q4_0x4 row `w` whose groups are gstride apart (blocks past the last whole group are ggml's). */
@inline export function packedByte(w: usize, gstride: usize, b: i32, j: i32, groups: i32): i32 {
  if ((b >> 2) >= groups) return <i32>load<u8>(w + <usize>(b * 16 + j));
  return <i32>load<u8>(w + <usize>(b >> 2) * gstride + <usize>((j >> 2) * 16 + (b & 3) * 4 + (j & 3)));
}

/** Block b's scale of a q4_0x4 row whose scales start at ws, its groups gstride apart (a tail only where gstride is 64). */
@inline export function packedScale(ws: usize, gstride: usize, b: i32): f32 {
  return load<f32>(ws + <usize>(b >> 2) * (gstride >> 2) + (<usize>(b & 3) << 2));
}

/** The scalar twin: dotQ4Scalar's arithmetic, reading the packed layout (every block through blocksQ4x4Scalar). */
export function dotQ4x4Scalar(w: usize, ws: usize, gstride: usize, a: usize, cols: i32): f32 {
  return blocksQ4x4Scalar(w, ws, gstride, a, cols, 0, f32x4.splat(0));
}

/** Packed row r of the matrix at (wq, ws) . one prepared activation, for code that walks rows by index. */
export function dotRowQ4x4(wq: usize, ws: usize, r: i32, rows: i32, cols: i32, a: usize, simd: bool): f32 {
  const o = rowOffQ4x4(r, rows, cols), gs = groupStrideQ4x4(r, rows, cols);
  return simd ? dotQ4x4Simd(wq + o, ws + (o >> 2), gs, a, cols) : dotQ4x4Scalar(wq + o, ws + (o >> 2), gs, a, cols);
}

/** i16x8 of one group: lanes 2i, 2i+1 sum to block i's x . q (q the unsigned nibbles). `x` the group's ext bytes. */
@inline function groupSum(w: usize, x: usize, m: v128): v128 {
  let v = v128.load(w);
  let acc = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x), v128.and(v, m)),
    i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 16), v128.and(i16x8.shr_u(v, 4), m)));
  v = v128.load(w, 16);
  acc = i16x8.add(acc, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 32), v128.and(v, m)),
    i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 48), v128.and(i16x8.shr_u(v, 4), m))));
  fence(acc);
  v = v128.load(w, 32);
  acc = i16x8.add(acc, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 64), v128.and(v, m)),
    i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 80), v128.and(i16x8.shr_u(v, 4), m))));
  v = v128.load(w, 48);
  return i16x8.add(acc, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 96), v128.and(v, m)),
    i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x, 112), v128.and(i16x8.shr_u(v, 4), m))));
}

/** The SIMD kernels' end: the row's last nb % 4 blocks (ggml's layout) into the lanes of acc, then the lane sum. */
@inline function tailQ4x4(w: usize, ws: usize, gstride: usize, a: usize, cols: i32, b: i32, acc: v128): f32 {
  return b == cols / QK ? hsumF32(acc) : blocksQ4x4Scalar(w, ws, gstride, a, cols, b, acc);
}

/** Blocks b..nb-1 of a packed row, one at a time in scalar code, added to the lanes of acc (lane b % 4); the lane sum. */
function blocksQ4x4Scalar(w: usize, ws: usize, gstride: usize, a: usize, cols: i32, b: i32, acc: v128): f32 {
  const nb = cols / QK;
  const groups = nb >> 2;
  const xs = a + xsOff(cols);
  lanesFrom(acc);
  for (; b < nb; b++) {
    const o = a + <usize>(b * QK);
    let s = 0; // dotQ4Scalar's exact block sum, each byte where the packed layout keeps it
    for (let j = 0; j < 16; j++) {
      const byte = packedByte(w, gstride, b, j, groups);
      s += ((byte & 0x0f) - 8) * <i32>load<i8>(o + j) + ((byte >> 4) - 8) * <i32>load<i8>(o + 16 + j);
    }
    laneAdd(b, <f32>s * (packedScale(ws, gstride, b) * load<f32>(xs + (<usize>b << 2))));
  }
  return lanesSum();
}

/** One packed row (groups gstride apart) . one prepared activation (arranged by arrangeQ4x4). */
export function dotQ4x4Simd(w: usize, ws: usize, gstride: usize, a: usize, cols: i32): f32 {
  if (RELAXED) {
    const groups = (cols / QK) >> 2;
    const m = nibbleMask();
    const sstride = gstride >> 2;
    let acc = f32x4.splat(0);
    let pw = w, px = a + extOff(cols), pxsum = a + xsumOff(cols), pws = ws, pxs = a + xsOff(cols);
    for (let g = 0; g < groups; g++) {
      acc = scaleRow<I16Dots>(acc, groupSum(pw, px, m), i32x4.shl(v128.load(pxsum), 3), v128.load(pws), v128.load(pxs));
      fence(acc);
      pw += gstride; px += 128; pxsum += 16; pws += sstride; pxs += 16;
    }
    return tailQ4x4(w, ws, gstride, a, cols, groups << 2, acc);
  } else {
    return dotQ4x4Scalar(w, ws, gstride, a, cols); // the packed layout is the relaxed build's: executors never pack otherwise
  }
}

/**
 * Mat-vec y (rows) = W (rows, cols) @ a, W packed: each quad's four rows together (one sequential stream), then the
 * rows apart one by one. A matrix without quads (cols % 128 != 0) reads rows r, r + q, r + 2q, r + 3q together
 * (q = rows / 4): four streams the prefetchers follow, where adjacent rows would interleave two in one page.
 */
export function matvecQ4x4(w: usize, ws: usize, rows: i32, cols: i32, a: usize, y: usize, simd: bool): void {
  const rb = <usize>(cols >> 1);
  const quads = quadRows(rows, cols);
  let done = 0;
  if (RELAXED) { // (a constant: the plain SIMD build compiles none of this)
    // quads: four adjacent rows, one stream; else rows r, r + q, r + 2q, r + 3q (q = rows / 4), four streams
    const n = quads > 0 ? quads >> 2 : rows >> 2;
    const off = quads > 0 ? <usize>64 : <usize>n * rb, gstride = quads > 0 ? <usize>256 : <usize>64;
    const rstep = quads > 0 ? <usize>(rb << 2) : rb, ystep = quads > 0 ? <usize>4 : <usize>n << 2, ynext = quads > 0 ? <usize>16 : <usize>4;
    if (simd) {
      if (UNSIGNED_DOTS) for (let i = 0; i < n; i++) dot4RowsQ4x4U(w + <usize>i * rstep, ws + ((<usize>i * rstep) >> 2), off, off >> 2, gstride, a, cols, y + <usize>i * ynext, ystep);
      // the i16 dots where fused dot-adds read bytes signed: fused, this mat-vec ran 0.92-0.99x even where they are
      // one instruction (Node 24-26, workerd; their zero start and add cost what the widening saved)
      else for (let i = 0; i < n; i++) dot4RowsQ4x4(w + <usize>i * rstep, ws + ((<usize>i * rstep) >> 2), off, off >> 2, gstride, a, cols, y + <usize>i * ynext, ystep);
      done = n << 2;
    }
  }
  for (let r = done; r < rows; r++) store<f32>(y + (<usize>r << 2), dotRowQ4x4(w, ws, r, rows, cols, a, simd));
}

/**
 * Rows w + k*off (scales ws + k*soff), k = 0..3, each a packed row whose groups are gstride apart, against `a`,
 * stored at y + k*ystep.
 */
@inline function dot4RowsQ4x4(w: usize, ws: usize, off: usize, soff: usize, gstride: usize, a: usize, cols: i32, y: usize, ystep: usize): void {
  const groups = (cols / QK) >> 2;
  const m = nibbleMask();
  const sstride = gstride >> 2;
  let aA = f32x4.splat(0), aB = f32x4.splat(0), aC = f32x4.splat(0), aD = f32x4.splat(0);
  const off2 = off << 1, off3 = off * 3;
  let pw = w, px = a + extOff(cols), pxsum = a + xsumOff(cols), pws = ws, pxs = a + xsOff(cols);
  for (let g = 0; g < groups; g++) {
    // one activation vector pair serves the four rows (unrolled: V8 does not unroll, and the loop costs ~10%)
    let xl = v128.load(px), xh = v128.load(px, 16);
    let sA = rows4Step(i16x8.splat(0), pw, xl, xh, m), sB = rows4Step(i16x8.splat(0), pw + off, xl, xh, m);
    let sC = rows4Step(i16x8.splat(0), pw + off2, xl, xh, m), sD = rows4Step(i16x8.splat(0), pw + off3, xl, xh, m);
    fence2(sA, sC);
    xl = v128.load(px, 32); xh = v128.load(px, 48);
    sA = rows4Step(sA, pw + 16, xl, xh, m); sB = rows4Step(sB, pw + off + 16, xl, xh, m);
    sC = rows4Step(sC, pw + off2 + 16, xl, xh, m); sD = rows4Step(sD, pw + off3 + 16, xl, xh, m);
    fence2(sA, sC);
    xl = v128.load(px, 64); xh = v128.load(px, 80);
    sA = rows4Step(sA, pw + 32, xl, xh, m); sB = rows4Step(sB, pw + off + 32, xl, xh, m);
    sC = rows4Step(sC, pw + off2 + 32, xl, xh, m); sD = rows4Step(sD, pw + off3 + 32, xl, xh, m);
    fence2(sA, sC);
    xl = v128.load(px, 96); xh = v128.load(px, 112);
    sA = rows4Step(sA, pw + 48, xl, xh, m); sB = rows4Step(sB, pw + off + 48, xl, xh, m);
    sC = rows4Step(sC, pw + off2 + 48, xl, xh, m); sD = rows4Step(sD, pw + off3 + 48, xl, xh, m);
    const xsv = v128.load(pxs);
    const xo = i32x4.shl(v128.load(pxsum), 3);
    aA = scaleRow<I16Dots>(aA, sA, xo, v128.load(pws), xsv);
    aB = scaleRow<I16Dots>(aB, sB, xo, v128.load(pws + soff), xsv);
    aC = scaleRow<I16Dots>(aC, sC, xo, v128.load(pws + 2 * soff), xsv);
    aD = scaleRow<I16Dots>(aD, sD, xo, v128.load(pws + 3 * soff), xsv);
    fence2(aA, aC);
    pw += gstride; px += 128; pxsum += 16; pws += sstride; pxs += 16;
  }
  store4Rows(w, ws, off, soff, gstride, a, cols, groups << 2, aA, aB, aC, aD, y, ystep);
}

/**
 * dot4RowsQ4x4 on UNSIGNED_DOTS engines (common.ts): each weight vector's low nibbles (v & 0x0f) and high ones in
 * place (v & 0xf0, 16 q) go into dot-adds of their own, lo and hi sums per row; a group's block sums are then
 * lo + (hi >> 4), the same exact integers as the i16 path's. Two masks and two dot-adds per vector instead of
 * two masks, a shift, two dots and two adds: granite's expert FFN out of cache 1.1-1.2x, in cache 1.3x.
 */
@inline function dot4RowsQ4x4U(w: usize, ws: usize, off: usize, soff: usize, gstride: usize, a: usize, cols: i32, y: usize, ystep: usize): void {
  const groups = (cols / QK) >> 2;
  const m = nibbleMask();
  const sstride = gstride >> 2;
  let aA = f32x4.splat(0), aB = f32x4.splat(0), aC = f32x4.splat(0), aD = f32x4.splat(0);
  const off2 = off << 1, off3 = off * 3;
  let pw = w, px = a + extOff(cols), pxsum = a + xsumOff(cols), pws = ws, pxs = a + xsOff(cols);
  for (let g = 0; g < groups; g++) {
    let lA = i32x4.splat(0), lB = i32x4.splat(0), lC = i32x4.splat(0), lD = i32x4.splat(0);
    let hA = i32x4.splat(0), hB = i32x4.splat(0), hC = i32x4.splat(0), hD = i32x4.splat(0);
    for (let k: usize = 0; k < 64; k += 16) { // one activation vector pair serves the four rows
      const xl = v128.load(px + 2 * k), xh = v128.load(px + 2 * k, 16);
      let v = v128.load(pw + k);
      lA = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, v128.and(v, m), lA); hA = i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, v128.andnot(v, m), hA);
      v = v128.load(pw + off + k);
      lB = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, v128.and(v, m), lB); hB = i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, v128.andnot(v, m), hB);
      v = v128.load(pw + off2 + k);
      lC = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, v128.and(v, m), lC); hC = i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, v128.andnot(v, m), hC);
      v = v128.load(pw + off3 + k);
      lD = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, v128.and(v, m), lD); hD = i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, v128.andnot(v, m), hD);
      fence2(lA, lC);
    }
    const xsv = v128.load(pxs);
    const xo = i32x4.shl(v128.load(pxsum), 3);
    aA = scaleRow<FusedDots>(aA, i32x4.add(lA, i32x4.shr_s(hA, 4)), xo, v128.load(pws), xsv);
    aB = scaleRow<FusedDots>(aB, i32x4.add(lB, i32x4.shr_s(hB, 4)), xo, v128.load(pws + soff), xsv);
    aC = scaleRow<FusedDots>(aC, i32x4.add(lC, i32x4.shr_s(hC, 4)), xo, v128.load(pws + 2 * soff), xsv);
    aD = scaleRow<FusedDots>(aD, i32x4.add(lD, i32x4.shr_s(hD, 4)), xo, v128.load(pws + 3 * soff), xsv);
    fence2(aA, aC);
    pw += gstride; px += 128; pxsum += 16; pws += sstride; pxs += 16;
  }
  store4Rows(w, ws, off, soff, gstride, a, cols, groups << 2, aA, aB, aC, aD, y, ystep);
}

/** The four rows' ends (tailQ4x4 of rows w + k*off from block b, lanes aA..aD) stored at y + k*ystep. */
@inline function store4Rows(w: usize, ws: usize, off: usize, soff: usize, gstride: usize, a: usize, cols: i32, b: i32,
  aA: v128, aB: v128, aC: v128, aD: v128, y: usize, ystep: usize): void {
  store<f32>(y, tailQ4x4(w, ws, gstride, a, cols, b, aA));
  store<f32>(y + ystep, tailQ4x4(w + off, ws + soff, gstride, a, cols, b, aB));
  store<f32>(y + 2 * ystep, tailQ4x4(w + (off << 1), ws + 2 * soff, gstride, a, cols, b, aC));
  store<f32>(y + 3 * ystep, tailQ4x4(w + off * 3, ws + 3 * soff, gstride, a, cols, b, aD));
}

/** s + the i16 partial sums of one packed weight vector (at w) against its activation pair xl, xh. */
@inline function rows4Step(s: v128, w: usize, xl: v128, xh: v128, m: v128): v128 {
  const v = v128.load(w);
  return i16x8.add(s, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xl, v128.and(v, m)), i16x8.relaxed_dot_i8x16_i7x16_s(xh, v128.and(i16x8.shr_u(v, 4), m))));
}

/**
 * acc + (s's four block sums - xo) * (wsv * xsv), as f32x4: one (row, token) group's finish, xo the activation's
 * -8 offsets (8 * its block sums), wsv the weight scales, xsv the activation scales. s holds i16 pairs per block,
 * or on the fused path (P = FusedDots) one i32 per block.
 */
@inline function scaleRow<P>(acc: v128, s16: v128, xo: v128, wsv: v128, xsv: v128): v128 {
  const s = i32x4.sub(sizeof<P>() == 4 ? s16 : i32x4.extadd_pairwise_i16x8_s(s16), xo);
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.mul(wsv, xsv)));
}

/**
 * Packed row r of the matrix at (wq, ws) against four prepared tokens a, a + stride, a + 2*stride, a + 3*stride:
 * y[t * ystep]. Each weight vector is loaded and unpacked once for the four tokens (prefill's reuse of a weight
 * block across tokens).
 */
export function dotRow4TokQ4x4(wq: usize, ws: usize, r: i32, rows: i32, cols: i32, a: usize, stride: i32, y: usize, ystep: usize): void {
  const o = rowOffQ4x4(r, rows, cols), gs = groupStrideQ4x4(r, rows, cols);
  const w = wq + o, s = ws + (o >> 2);
  if (RELAXED && FUSED_DOT) dotRow4TokRelaxed<FusedDots>(w, s, gs, a, stride, cols, y, ystep);
  else if (RELAXED) dotRow4TokRelaxed<I16Dots>(w, s, gs, a, stride, cols, y, ystep);
  else for (let t = 0; t < 4; t++) store<f32>(y + <usize>t * ystep, dotQ4x4Scalar(w, s, gs, a + <usize>(t * stride), cols));
}

/** P = FusedDots: the four tokens' sums in i32 lanes, each chained through its dot-adds (four independent chains). */
@inline function dotRow4TokRelaxed<P>(w: usize, ws: usize, gstride: usize, a: usize, stride: i32, cols: i32, y: usize, ystep: usize): void {
  const groups = (cols / QK) >> 2;
  const m = nibbleMask();
  const sstride = gstride >> 2;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const st = <usize>stride;
  let pw = w, pws = ws;
  let px = a + extOff(cols), pxsum = a + xsumOff(cols), pxs = a + xsOff(cols); // token 0's; the others st apart
  for (let g = 0; g < groups; g++) {
    let s0 = i16x8.splat(0), s1 = i16x8.splat(0), s2 = i16x8.splat(0), s3 = i16x8.splat(0);
    if (sizeof<P>() == 4) {
      // the group's four weight vectors unrolled (V8 does not unroll; constant offsets fold into the addresses):
      // 1.12-1.16x with fused dots in V8 13 (Node 24), while the i16 path's longer bodies spilled, 0.91x in V8 12.4
      const p1 = px + st, p2 = px + 2 * st, p3 = px + 3 * st;
      let v = v128.load(pw);
      let lo = v128.and(v, m), hi = v128.and(i16x8.shr_u(v, 4), m);
      s0 = tokStep<P>(s0, v128.load(px), v128.load(px, 16), lo, hi);
      s1 = tokStep<P>(s1, v128.load(p1), v128.load(p1, 16), lo, hi);
      s2 = tokStep<P>(s2, v128.load(p2), v128.load(p2, 16), lo, hi);
      s3 = tokStep<P>(s3, v128.load(p3), v128.load(p3, 16), lo, hi);
      fence2(s0, s2);
      v = v128.load(pw, 16);
      lo = v128.and(v, m); hi = v128.and(i16x8.shr_u(v, 4), m);
      s0 = tokStep<P>(s0, v128.load(px, 32), v128.load(px, 48), lo, hi);
      s1 = tokStep<P>(s1, v128.load(p1, 32), v128.load(p1, 48), lo, hi);
      s2 = tokStep<P>(s2, v128.load(p2, 32), v128.load(p2, 48), lo, hi);
      s3 = tokStep<P>(s3, v128.load(p3, 32), v128.load(p3, 48), lo, hi);
      fence2(s0, s2);
      v = v128.load(pw, 32);
      lo = v128.and(v, m); hi = v128.and(i16x8.shr_u(v, 4), m);
      s0 = tokStep<P>(s0, v128.load(px, 64), v128.load(px, 80), lo, hi);
      s1 = tokStep<P>(s1, v128.load(p1, 64), v128.load(p1, 80), lo, hi);
      s2 = tokStep<P>(s2, v128.load(p2, 64), v128.load(p2, 80), lo, hi);
      s3 = tokStep<P>(s3, v128.load(p3, 64), v128.load(p3, 80), lo, hi);
      fence2(s0, s2);
      v = v128.load(pw, 48);
      lo = v128.and(v, m); hi = v128.and(i16x8.shr_u(v, 4), m);
      s0 = tokStep<P>(s0, v128.load(px, 96), v128.load(px, 112), lo, hi);
      s1 = tokStep<P>(s1, v128.load(p1, 96), v128.load(p1, 112), lo, hi);
      s2 = tokStep<P>(s2, v128.load(p2, 96), v128.load(p2, 112), lo, hi);
      s3 = tokStep<P>(s3, v128.load(p3, 96), v128.load(p3, 112), lo, hi);
    } else {
      for (let k = 0; k < 4; k++) {
        const v = v128.load(pw + (<usize>k << 4));
        const lo = v128.and(v, m), hi = v128.and(i16x8.shr_u(v, 4), m);
        const xk = px + (<usize>k << 5);
        s0 = tokStep<P>(s0, v128.load(xk), v128.load(xk, 16), lo, hi);
        s1 = tokStep<P>(s1, v128.load(xk + st), v128.load(xk + st, 16), lo, hi);
        s2 = tokStep<P>(s2, v128.load(xk + 2 * st), v128.load(xk + 2 * st, 16), lo, hi);
        s3 = tokStep<P>(s3, v128.load(xk + 3 * st), v128.load(xk + 3 * st, 16), lo, hi);
        fence2(s0, s2);
      }
    }
    const wsv = v128.load(pws);
    a0 = scaleRow<P>(a0, s0, i32x4.shl(v128.load(pxsum), 3), wsv, v128.load(pxs));
    a1 = scaleRow<P>(a1, s1, i32x4.shl(v128.load(pxsum + st), 3), wsv, v128.load(pxs + st));
    a2 = scaleRow<P>(a2, s2, i32x4.shl(v128.load(pxsum + 2 * st), 3), wsv, v128.load(pxs + 2 * st));
    a3 = scaleRow<P>(a3, s3, i32x4.shl(v128.load(pxsum + 3 * st), 3), wsv, v128.load(pxs + 3 * st));
    fence2(a0, a2);
    pw += gstride; pws += sstride; px += 128; pxsum += 16; pxs += 16;
  }
  const b = groups << 2;
  store<f32>(y, tailQ4x4(w, ws, gstride, a, cols, b, a0));
  store<f32>(y + ystep, tailQ4x4(w, ws, gstride, a + st, cols, b, a1));
  store<f32>(y + 2 * ystep, tailQ4x4(w, ws, gstride, a + 2 * st, cols, b, a2));
  store<f32>(y + 3 * ystep, tailQ4x4(w, ws, gstride, a + 3 * st, cols, b, a3));
}

/** s + one token's sums for one weight vector (lo, hi its nibbles) against the token's activation pair xl, xh. */
@inline function tokStep<P>(s: v128, xl: v128, xh: v128, lo: v128, hi: v128): v128 {
  if (sizeof<P>() == 4) return i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, hi, i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, lo, s));
  return i16x8.add(s, i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xl, lo), i16x8.relaxed_dot_i8x16_i7x16_s(xh, hi)));
}

/**
 * Fused dot-adds (FUSED_DOT): two packed rows, A (wa, sa) and B (wb, sb), both with group stride gstride, against four
 * prepared tokens a + t*stride: ya[t * ystep] and yb[t * ystep]. Each activation pair serves both rows' nibbles: a
 * weight vector of each row and the four tokens take ten loads for sixteen dot-adds (dotRow4TokRelaxed: nine for
 * eight), in eight independent chains. The rows should be one sequential stream: rows r, r + 1 of a quad (a gate row
 * with its up row stalled on the weight loads, wasm/README.md). Same values as dotRow4TokQ4x4 per row, bit for bit.
 */
export function dotRows2Tok4Q4x4(wa: usize, sa: usize, wb: usize, sb: usize, gstride: usize, cols: i32, a: usize, stride: i32, ya: usize, yb: usize, ystep: usize): void {
  if (!RELAXED) return; // (a constant: the plain SIMD build compiles none of this; matmul calls it only on FUSED_DOT)
  const groups = (cols / QK) >> 2;
  const m = nibbleMask();
  const sstride = gstride >> 2;
  const st = <usize>stride;
  for (let k: usize = 0; k < 128; k += 16) v128.store(ACC8 + k, f32x4.splat(0));
  const w1 = wb - wa, s1 = sb - sa; // row B from row A's pointers
  let pw = wa, pws = sa;
  let px = a + extOff(cols), pxsum = a + xsumOff(cols), pxs = a + xsOff(cols); // token 0's; the others st apart
  for (let g = 0; g < groups; g++) {
    let p0 = i32x4.splat(0), p1 = p0, p2 = p0, p3 = p0, q0 = p0, q1 = p0, q2 = p0, q3 = p0;
    for (let k: usize = 0; k < 64; k += 16) {
      const va = v128.load(pw + k), vb = v128.load(pw + w1 + k);
      const la = v128.and(va, m), ha = v128.and(i16x8.shr_u(va, 4), m);
      const lb = v128.and(vb, m), hb = v128.and(i16x8.shr_u(vb, 4), m);
      let x = px + (k << 1);
      let xl = v128.load(x), xh = v128.load(x, 16);
      p0 = tokStep<FusedDots>(p0, xl, xh, la, ha); q0 = tokStep<FusedDots>(q0, xl, xh, lb, hb);
      x += st; xl = v128.load(x); xh = v128.load(x, 16);
      p1 = tokStep<FusedDots>(p1, xl, xh, la, ha); q1 = tokStep<FusedDots>(q1, xl, xh, lb, hb);
      x += st; xl = v128.load(x); xh = v128.load(x, 16);
      p2 = tokStep<FusedDots>(p2, xl, xh, la, ha); q2 = tokStep<FusedDots>(q2, xl, xh, lb, hb);
      x += st; xl = v128.load(x); xh = v128.load(x, 16);
      p3 = tokStep<FusedDots>(p3, xl, xh, la, ha); q3 = tokStep<FusedDots>(q3, xl, xh, lb, hb);
    }
    const va = v128.load(pws), vb = v128.load(pws + s1);
    let xo = i32x4.shl(v128.load(pxsum), 3), xs = v128.load(pxs);
    v128.store(ACC8, scaleRow<FusedDots>(v128.load(ACC8), p0, xo, va, xs));
    v128.store(ACC8, scaleRow<FusedDots>(v128.load(ACC8, 64), q0, xo, vb, xs), 64);
    xo = i32x4.shl(v128.load(pxsum + st), 3); xs = v128.load(pxs + st);
    v128.store(ACC8, scaleRow<FusedDots>(v128.load(ACC8, 16), p1, xo, va, xs), 16);
    v128.store(ACC8, scaleRow<FusedDots>(v128.load(ACC8, 80), q1, xo, vb, xs), 80);
    xo = i32x4.shl(v128.load(pxsum + 2 * st), 3); xs = v128.load(pxs + 2 * st);
    v128.store(ACC8, scaleRow<FusedDots>(v128.load(ACC8, 32), p2, xo, va, xs), 32);
    v128.store(ACC8, scaleRow<FusedDots>(v128.load(ACC8, 96), q2, xo, vb, xs), 96);
    xo = i32x4.shl(v128.load(pxsum + 3 * st), 3); xs = v128.load(pxs + 3 * st);
    v128.store(ACC8, scaleRow<FusedDots>(v128.load(ACC8, 48), p3, xo, va, xs), 48);
    v128.store(ACC8, scaleRow<FusedDots>(v128.load(ACC8, 112), q3, xo, vb, xs), 112);
    pw += gstride; pws += sstride; px += 128; pxsum += 16; pxs += 16;
  }
  const b = groups << 2;
  for (let t: usize = 0; t < 4; t++) {
    store<f32>(ya + t * ystep, tailQ4x4(wa, sa, gstride, a + t * st, cols, b, v128.load(ACC8 + (t << 4))));
    store<f32>(yb + t * ystep, tailQ4x4(wb, sb, gstride, a + t * st, cols, b, v128.load(ACC8 + 64 + (t << 4))));
  }
}

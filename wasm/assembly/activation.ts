// Prepared activations: each f32 input row is converted once per matmul into what the row-dot kernels read
// (prepareQ8 builds the same from q8_0 blocks that arrive already quantized, e.g. from the Worker).
// One token's block (stride actBytes(dt, cols), 64-byte aligned):
//   f32:        x (cols f32)
//   f16:        x rounded through f16 (cols f32), as ggml's F16 vec_dot sees it
//   q8_0/q4_0:  [qx: cols i8][ext: 2*cols bytes][xs: nb f32][xsum: nb i32]
// qx/xs are ggml's quantize_row_q8_0 (d = f16(amax/127), q = nearest(x * 127/amax) in f32); xsum is each block's
// sum of qx (for the q4_0 offset correction). `ext` holds qx re-laid for the SIMD dots (the scalar twins read qx):
//   simd build, q8_0:    qx widened to i16, in order (64 bytes per block)
//   simd build, q4_0:    qx widened to i16 and permuted per block to [x0,x2..x14][x16,x18..x30][x1,x3..x15][x17..x31],
//                        the order in which 16-bit lanes of packed nibbles yield their four nibbles
//   relaxed build, q8_0: per block [xp: 32 u8 = max(qx,0)][xn: 32 u8 = max(-qx,0)], 7-bit operands for relaxed dot
//   relaxed build, q4_0: unused (qx is the signed operand, the nibbles the 7-bit one)
//   relaxed build, q4_0x4 (packed weights, dot-q4x4.ts): qx re-laid per group of four blocks, arrangeQ4x4
//   relaxed build, q8_0x4 (packed weights, dot-q8x4.ts): xp, xn re-laid per group of four blocks, or on UNSIGNED_DOTS
//   engines qx re-laid so beside -128 x its block sums (nothing in ext before that), arrangeQ8x4
import { QK, DT_F32, DT_F16, DT_Q8_0, DT_Q4_0X4, DT_Q8_0X4, RELAXED, UNSIGNED_DOTS, align64, f32ToF16, f16ToF32, roundF16 } from './common';
import { arrangeQ4x4 } from './dot-q4x4';
import { arrangeQ8x4 } from './dot-q8x4';

export function actBytes(dt: i32, cols: i32): i32 {
  if (dt == DT_F32 || dt == DT_F16) return align64(cols << 2);
  return align64(cols * 3 + (cols / QK) * 8);
}

@inline export function extOff(cols: i32): i32 { return cols; }
@inline export function xsOff(cols: i32): i32 { return cols * 3; }
@inline export function xsumOff(cols: i32): i32 { return cols * 3 + (cols / QK) * 4; }

/** act (nTok, stride) <- prepared x (nTok, cols). `simd`: SIMD quantizer, which also fills `ext`. */
export function prepare(dt: i32, x: usize, nTok: i32, cols: i32, act: usize, stride: i32, simd: bool): void {
  for (let t = 0; t < nTok; t++) {
    const src = x + <usize>(t * cols) * 4;
    const dst = act + <usize>(t * stride);
    if (dt == DT_F32) {
      memory.copy(dst, src, <usize>cols * 4);
    } else if (dt == DT_F16) {
      for (let i = 0; i < cols; i++) store<f32>(dst + (<usize>i << 2), roundF16(load<f32>(src + (<usize>i << 2))));
    } else if (simd) {
      quantizeRowQ8Simd(src, dst, cols, extForQ8(dt));
      arrangePacked(dt, dst, cols);
    } else {
      quantizeRowQ8Scalar(src, dst, cols);
    }
  }
}

@inline function blockScale(amax: f32): f32 {
  return f16ToF32(f32ToF16(amax / 127));
}

function quantizeRowQ8Scalar(src: usize, dst: usize, cols: i32): void {
  const nb = cols / QK;
  for (let b = 0; b < nb; b++) {
    const blk = src + (<usize>(b * QK) << 2);
    let amax: f32 = 0;
    for (let j = 0; j < QK; j++) amax = max<f32>(amax, abs<f32>(load<f32>(blk + (<usize>j << 2))));
    const id: f32 = amax != 0 ? <f32>127 / amax : 0;
    let sum = 0;
    const q0 = dst + <usize>(b * QK);
    for (let j = 0; j < QK; j++) {
      const q = <i32>nearest<f32>(load<f32>(blk + (<usize>j << 2)) * id);
      store<i8>(q0 + j, <i8>q);
      sum += q;
    }
    store<f32>(dst + xsOff(cols) + (<usize>b << 2), blockScale(amax));
    store<i32>(dst + xsumOff(cols) + (<usize>b << 2), sum);
  }
}

/** Same values as quantizeRowQ8Scalar (max, nearest and the f32 products are exact lane-wise), plus `ext`. */
function quantizeRowQ8Simd(src: usize, dst: usize, cols: i32, forQ8: bool): void {
  const nb = cols / QK;
  for (let b = 0; b < nb; b++) {
    const blk = src + (<usize>(b * QK) << 2);
    const v0 = v128.load(blk), v1 = v128.load(blk, 16), v2 = v128.load(blk, 32), v3 = v128.load(blk, 48);
    const v4 = v128.load(blk, 64), v5 = v128.load(blk, 80), v6 = v128.load(blk, 96), v7 = v128.load(blk, 112);
    let m = f32x4.max(f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3))),
      f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))));
    m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
    const amax = max<f32>(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
    const id = f32x4.splat(amax != 0 ? <f32>127 / amax : 0);
    const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v0, id)));
    const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v1, id)));
    const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v2, id)));
    const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v3, id)));
    const i4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v4, id)));
    const i5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v5, id)));
    const i6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v6, id)));
    const i7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v7, id)));
    const h0 = i16x8.narrow_i32x4_s(i0, i1), h1 = i16x8.narrow_i32x4_s(i2, i3); // elements 0..7, 8..15
    const h2 = i16x8.narrow_i32x4_s(i4, i5), h3 = i16x8.narrow_i32x4_s(i6, i7); // 16..23, 24..31
    const q0 = i8x16.narrow_i16x8_s(h0, h1), q1 = i8x16.narrow_i16x8_s(h2, h3);
    const qo = dst + <usize>(b * QK);
    v128.store(qo, q0);
    v128.store(qo, q1, 16);
    const s = i32x4.add(i32x4.add(i32x4.add(i0, i1), i32x4.add(i2, i3)), i32x4.add(i32x4.add(i4, i5), i32x4.add(i6, i7)));
    const sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
    store<f32>(dst + xsOff(cols) + (<usize>b << 2), blockScale(amax));
    store<i32>(dst + xsumOff(cols) + (<usize>b << 2), sum);
    storeExt(dst, cols, b, q0, q1, h0, h1, h2, h3, forQ8);
  }
}

/**
 * act (nTok, stride) <- what prepare(dt, x) makes of x = xq * xd, built from q8_0 blocks that are already there:
 * xq (nTok, cols) i8 and xd (nTok, cols/32) f16 scales (src/format/quant.ts's layout). When the blocks are ggml's
 * activation quantization of x (so quantizing q * d gives back q and d), the result is prepare's, byte for byte:
 * a caller that received such blocks skips the dequantize/requantize round. dt: q8_0 or q4_0.
 */
export function prepareQ8(dt: i32, xq: usize, xd: usize, nTok: i32, cols: i32, act: usize, stride: i32, simd: bool): void {
  const nb = cols / QK;
  for (let t = 0; t < nTok; t++) {
    const dst = act + <usize>(t * stride);
    const ds = xd + (<usize>(t * nb) << 1);
    memory.copy(dst, xq + <usize>(t * cols), <usize>cols);
    for (let b = 0; b < nb; b++) {
      const qo = dst + <usize>(b * QK);
      let sum = 0;
      if (simd) {
        const q0 = v128.load(qo), q1 = v128.load(qo, 16);
        const h0 = i16x8.extend_low_i8x16_s(q0), h1 = i16x8.extend_high_i8x16_s(q0); // elements 0..7, 8..15
        const h2 = i16x8.extend_low_i8x16_s(q1), h3 = i16x8.extend_high_i8x16_s(q1); // 16..23, 24..31
        const s = i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.add(h0, h1), i16x8.add(h2, h3))); // |lane| <= 512
        sum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
        storeExt(dst, cols, b, q0, q1, h0, h1, h2, h3, extForQ8(dt));
      } else {
        for (let j = 0; j < QK; j++) sum += <i32>load<i8>(qo + j);
      }
      store<f32>(dst + xsOff(cols) + (<usize>b << 2), f16ToF32(<u32>load<u16>(ds + (<usize>b << 1))));
      store<i32>(dst + xsumOff(cols) + (<usize>b << 2), sum);
    }
    if (simd) arrangePacked(dt, dst, cols);
  }
}

/**
 * Whether `ext` holds q8_0's operands (xp/xn, or i16 in the SIMD build) for dtype dt: q8_0's, and q8_0x4's unless the
 * engine reads bytes unsigned (arrangeQ8x4 then writes its ext from qx alone).
 */
@inline function extForQ8(dt: i32): bool {
  return dt == DT_Q8_0 || (dt == DT_Q8_0X4 && !UNSIGNED_DOTS);
}

/** The relaxed build's packed weights read `ext` re-laid per group of four blocks (dot-q4x4.ts, dot-q8x4.ts). */
@inline function arrangePacked(dt: i32, dst: usize, cols: i32): void {
  if (RELAXED && dt == DT_Q4_0X4) arrangeQ4x4(dst, cols);
  else if (RELAXED && dt == DT_Q8_0X4) arrangeQ8x4(dst, cols);
}

/** `ext` of block b from its quants: q0, q1 = elements 0..15, 16..31 (i8); h0..h3 = elements 0..7 .. 24..31 (i16). */
@inline function storeExt(dst: usize, cols: i32, b: i32, q0: v128, q1: v128, h0: v128, h1: v128, h2: v128, h3: v128, forQ8: bool): void {
  if (RELAXED) {
    if (forQ8) {
      const z = i8x16.splat(0);
      const xp = dst + extOff(cols) + <usize>(b * 64);
      v128.store(xp, i8x16.max_s(q0, z));
      v128.store(xp, i8x16.max_s(q1, z), 16);
      v128.store(xp, i8x16.max_s(i8x16.neg(q0), z), 32);
      v128.store(xp, i8x16.max_s(i8x16.neg(q1), z), 48);
    }
  } else {
    const e = dst + extOff(cols) + <usize>(b * QK * 2);
    if (forQ8) {
      v128.store(e, h0); v128.store(e, h1, 16); v128.store(e, h2, 32); v128.store(e, h3, 48);
    } else {
      v128.store(e, v128.shuffle<i16>(h0, h1, 0, 2, 4, 6, 8, 10, 12, 14));
      v128.store(e, v128.shuffle<i16>(h2, h3, 0, 2, 4, 6, 8, 10, 12, 14), 16);
      v128.store(e, v128.shuffle<i16>(h0, h1, 1, 3, 5, 7, 9, 11, 13, 15), 32);
      v128.store(e, v128.shuffle<i16>(h2, h3, 1, 3, 5, 7, 9, 11, 13, 15), 48);
    }
  }
}

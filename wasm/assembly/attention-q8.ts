// A q8_0 KV cache read for two query heads of one KV head (GQA) at once, four positions a step: the key scores from
// one load of each key vector, and on the decode path the value sums with each value vector dequantized in registers
// for both heads. Every value is the generic path's bit for bit (attention.ts: keyScores' dotRow, vHead + axpy4x2):
// the block sums are exact integers, and the f32 products and sums keep their order. Why: per position and head the
// generic path called a dot over two 32-blocks through its scalar tail, and dequantized each value row to memory to
// read it back; a decode step at 1,024 positions spent 100 us a layer on keys and 130 us on values (granite's shape).
import { QK, RELAXED, FUSED_DOT, UNSIGNED_DOTS, I16Dots, FusedDots, UnsignedDots } from './common';
import { extOff, xsOff, xsumOff } from './activation';
import { blockQ8v } from './dot-q8';
import { pairSum, finishSum, onesI16, ACC8 } from './simd-util';

// 0x80 in every byte: a key byte XOR this is the byte + 128, the unsigned operand of a fused dot-add (UnsignedDots)
const FLIP: usize = memory.data<u8>([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80], 16);

/**
 * Scores of query heads A and B (prepared q8_0 at aA, aB: activation.ts) against the keys at k, k + off, k + 2off,
 * k + 3off (scales ks + m*soff), headDim = nb * 32: yA[0..3], yB[0..3], each dotRow's value times scale.
 */
export function keys4x2Q8(k: usize, ks: usize, off: usize, soff: usize, aA: usize, aB: usize, headDim: i32, scale: f32, yA: usize, yB: usize): void {
  if (RELAXED && UNSIGNED_DOTS) keys4x2<UnsignedDots>(k, ks, off, soff, aA, aB, headDim, scale, yA, yB);
  else if (RELAXED && FUSED_DOT) keys4x2<FusedDots>(k, ks, off, soff, aA, aB, headDim, scale, yA, yB);
  else keys4x2<I16Dots>(k, ks, off, soff, aA, aB, headDim, scale, yA, yB);
}

/** i32x4 whose lanes sum to key block w . query block (qx at q, ext at e); UnsignedDots: + 128 * the query's block sum. */
@inline function keyBlock<P>(w: usize, q: usize, e: usize, ones: v128): v128 {
  if (RELAXED && sizeof<P>() == 8) { // dot(qx, w + 128): the query signed, the key unsigned, one dot-add per vector
    const flip = v128.load(FLIP);
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(q, 16), v128.xor(v128.load(w, 16), flip),
      i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(q), v128.xor(v128.load(w), flip), i32x4.splat(0)));
  }
  return blockQ8v<P>(v128.load(w), v128.load(w, 16), v128.load(e), v128.load(e, 16), v128.load(e, 32), v128.load(e, 48), ones);
}

/** Lanes m = 0..3: block b of key m . query block b, exact (rows off apart), from keyBlock's four partial vectors. */
@inline function keyBlock4<P>(w: usize, off: usize, q: usize, e: usize, xsum: usize, ones: v128): v128 {
  const s = finishSum(pairSum(keyBlock<P>(w, q, e, ones), keyBlock<P>(w + off, q, e, ones)),
    pairSum(keyBlock<P>(w + 2 * off, q, e, ones), keyBlock<P>(w + 3 * off, q, e, ones)));
  return sizeof<P>() == 8 ? i32x4.sub(s, i32x4.shl(i32x4.splat(load<i32>(xsum)), 7)) : s;
}

@inline function keys4x2<P>(k: usize, ks: usize, off: usize, soff: usize, aA: usize, aB: usize, headDim: i32, scale: f32, yA: usize, yB: usize): void {
  const nb = headDim / QK;
  const ones = onesI16();
  // the lanes of dotQ8's accumulator per head (block b adds to lane b % 4), lanes here being the four keys
  const z = f32x4.splat(0);
  for (let i: usize = 0; i < 128; i += 16) v128.store(ACC8 + i, z);
  const eA = aA + extOff(headDim), eB = aB + extOff(headDim);
  for (let b = 0; b < nb; b++) {
    const kb = k + <usize>(b * QK), sb = ks + (<usize>b << 2);
    let ksv = f32x4.splat(load<f32>(sb)); // the four keys' block scales
    ksv = f32x4.replace_lane(ksv, 1, load<f32>(sb + soff));
    ksv = f32x4.replace_lane(ksv, 2, load<f32>(sb + 2 * soff));
    ksv = f32x4.replace_lane(ksv, 3, load<f32>(sb + 3 * soff));
    const sA = keyBlock4<P>(kb, off, aA + <usize>(b * QK), eA + <usize>(b * 64), aA + xsumOff(headDim) + (<usize>b << 2), ones);
    const sB = keyBlock4<P>(kb, off, aB + <usize>(b * QK), eB + <usize>(b * 64), aB + xsumOff(headDim) + (<usize>b << 2), ones);
    const lane = <usize>(b & 3) << 4;
    const xsA = f32x4.splat(load<f32>(aA + xsOff(headDim) + (<usize>b << 2))), xsB = f32x4.splat(load<f32>(aB + xsOff(headDim) + (<usize>b << 2)));
    v128.store(ACC8 + lane, f32x4.add(v128.load(ACC8 + lane), f32x4.mul(f32x4.convert_i32x4_s(sA), f32x4.mul(ksv, xsA))));
    v128.store(ACC8 + lane, f32x4.add(v128.load(ACC8 + lane, 64), f32x4.mul(f32x4.convert_i32x4_s(sB), f32x4.mul(ksv, xsB))), 64);
  }
  const sc = f32x4.splat(scale);
  v128.store(yA, f32x4.mul(f32x4.add(f32x4.add(v128.load(ACC8), v128.load(ACC8, 32)), f32x4.add(v128.load(ACC8, 16), v128.load(ACC8, 48))), sc));
  v128.store(yB, f32x4.mul(f32x4.add(f32x4.add(v128.load(ACC8, 64), v128.load(ACC8, 96)), f32x4.add(v128.load(ACC8, 80), v128.load(ACC8, 112))), sc));
}

/**
 * oA (headDim) += the value rows at v, v + off, v + 2off, v + 3off (q8_0, scales vs + m*soff) weighted by pA[0..3],
 * oB likewise by pB: each row dequantized in registers (q * d, as getRow), each element summed in axpy4's order.
 */
export function values4x2Q8(oA: usize, oB: usize, v: usize, vs: usize, off: usize, soff: usize, pA: usize, pB: usize, headDim: i32): void {
  const a0 = f32x4.splat(load<f32>(pA)), a1 = f32x4.splat(load<f32>(pA, 4)), a2 = f32x4.splat(load<f32>(pA, 8)), a3 = f32x4.splat(load<f32>(pA, 12));
  const b0 = f32x4.splat(load<f32>(pB)), b1 = f32x4.splat(load<f32>(pB, 4)), b2 = f32x4.splat(load<f32>(pB, 8)), b3 = f32x4.splat(load<f32>(pB, 12));
  const nb = headDim / QK;
  for (let b = 0; b < nb; b++) {
    const sb = vs + (<usize>b << 2);
    const d0 = f32x4.splat(load<f32>(sb)), d1 = f32x4.splat(load<f32>(sb + soff));
    const d2 = f32x4.splat(load<f32>(sb + 2 * soff)), d3 = f32x4.splat(load<f32>(sb + 3 * soff));
    const vb = v + <usize>(b * QK), ob = <usize>(b * QK) << 2;
    for (let c: usize = 0; c < <usize>QK; c += 8) { // eight elements of the four rows a step
      const at = ob + (c << 2);
      let xA0 = v128.load(oA + at), xA1 = v128.load(oA + at, 16), xB0 = v128.load(oB + at), xB1 = v128.load(oB + at, 16);
      let w = v128.load_ext<i8>(vb + c);
      let lo = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), d0), hi = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)), d0);
      xA0 = f32x4.add(xA0, f32x4.mul(a0, lo)); xA1 = f32x4.add(xA1, f32x4.mul(a0, hi));
      xB0 = f32x4.add(xB0, f32x4.mul(b0, lo)); xB1 = f32x4.add(xB1, f32x4.mul(b0, hi));
      w = v128.load_ext<i8>(vb + off + c);
      lo = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), d1); hi = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)), d1);
      xA0 = f32x4.add(xA0, f32x4.mul(a1, lo)); xA1 = f32x4.add(xA1, f32x4.mul(a1, hi));
      xB0 = f32x4.add(xB0, f32x4.mul(b1, lo)); xB1 = f32x4.add(xB1, f32x4.mul(b1, hi));
      w = v128.load_ext<i8>(vb + 2 * off + c);
      lo = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), d2); hi = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)), d2);
      xA0 = f32x4.add(xA0, f32x4.mul(a2, lo)); xA1 = f32x4.add(xA1, f32x4.mul(a2, hi));
      xB0 = f32x4.add(xB0, f32x4.mul(b2, lo)); xB1 = f32x4.add(xB1, f32x4.mul(b2, hi));
      w = v128.load_ext<i8>(vb + 3 * off + c);
      lo = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(w)), d3); hi = f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(w)), d3);
      v128.store(oA + at, f32x4.add(xA0, f32x4.mul(a3, lo))); v128.store(oA + at, f32x4.add(xA1, f32x4.mul(a3, hi)), 16);
      v128.store(oB + at, f32x4.add(xB0, f32x4.mul(b3, lo))); v128.store(oB + at, f32x4.add(xB1, f32x4.mul(b3, hi)), 16);
    }
  }
}

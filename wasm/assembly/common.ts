// Constants and helpers shared by every kernel: dtype codes, block sizes (checked against src/format/quant.ts
// when an executor loads the module) and the f16 conversions that must round exactly like quant.ts.

export const QK: i32 = 32; // elements per quant block (ggml QK8_0 == QK4_0)
export const Q8_0_BLOCK_QUANT_BYTES: i32 = 32;
export const Q4_0_BLOCK_QUANT_BYTES: i32 = 16;
export const SCALE_BYTES: i32 = 4; // scales are widened to f32 in kernel memory

// dtype codes passed from JS (src/kernels/wasm.ts maps DType -> code and checks these, exported by index.ts, at load)
export const DT_F32: i32 = 0;
export const DT_F16: i32 = 1;
export const DT_Q8_0: i32 = 2;
export const DT_Q4_0: i32 = 3;
// q4_0 weights the executor repacked at load (dot-q4x4.ts); same bytes and scales as q4_0, relaxed build only
export const DT_Q4_0X4: i32 = 4;
// q8_0 weights the executor repacked at load (dot-q8x4.ts); same bytes and scales as q8_0, relaxed build only
export const DT_Q8_0X4: i32 = 5;

/** True in kernels-relaxed.wasm: its SIMD kernels use relaxed integer dot products. */
export const RELAXED: bool = ASC_FEATURE_RELAXED_SIMD;

/**
 * Relaxed build: accumulate integer dots with `i32x4.relaxed_dot_i8x16_i7x16_add_s` (one AVX-VNNI vpdpbusd where
 * the engine lowers it so) instead of the i16 dot + widening (pmaddubsw, which every x64 engine has). Both give the
 * same exact integers; only the speed differs, so the executor sets it per engine (src/kernels/fused-dot.ts).
 */
export let FUSED_DOT: bool = false;

/**
 * Fused dot-adds that read their second operand as unsigned bytes, exactly (AVX-VNNI vpdpbusd; the executor knows
 * from fused_dot_probe): the packed q4_0 mat-vec then multiplies the high nibbles where they lie (v & 0xf0 = 16 q,
 * 0..240, out of the spec's deterministic 0..127) into a sum of their own, divided by 16 once per group, and skips
 * the shift that moves them down; packed q8_0 stores its weights as w + 128 (dot-q8x4.ts, UnsignedDots). Same exact integers; set
 * only where the engine's lowering makes it so.
 */
export let UNSIGNED_DOTS: bool = false;

// A kernel body's integer-dot path as a compile-time type argument, tested with `sizeof<P>() == 4` so that the
// compiler drops the other path: a bool parameter left both paths in one loop with a branch per step (Binaryen
// folded the two inlined copies before it propagated the constant), which ran 0.7x.
export type I16Dots = i16;
export type FusedDots = i32;
// q8_0x4 on UNSIGNED_DOTS engines: weights stored as w + 128, one fused dot-add each (dot-q8x4.ts), tested with sizeof<P>() == 8
export type UnsignedDots = i64;

export function setFusedDot(on: bool, unsignedDots: bool): void {
  FUSED_DOT = on;
  UNSIGNED_DOTS = on && unsignedDots;
}

@inline export function align64(n: i32): i32 {
  return (n + 63) & ~63;
}

/** Bytes of one weight row of `cols` elements (quants or values). */
export function rowBytes(dt: i32, cols: i32): i32 {
  if (dt == DT_F32) return cols << 2;
  if (dt == DT_F16) return cols << 1;
  if (dt == DT_Q8_0 || dt == DT_Q8_0X4) return cols;
  return cols >> 1;
}

/** f32 -> f16 bits, round to nearest even; a line-by-line port of f32ToF16 in quant.ts. */
export function f32ToF16(value: f32): u32 {
  const x = reinterpret<u32>(value);
  const sign = (x >>> 16) & 0x8000;
  const exp = <i32>((x >>> 23) & 0xff);
  let mant = x & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant != 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = <u32>(14 - e);
    const half: u32 = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest == half && (r & 1) != 0)) r++;
    return sign | r;
  }
  let r = (<u32>e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (r & 1) != 0)) r++; // may carry into the exponent: still correct
  return sign | r;
}

// 2^112: moves an f16 exponent (bias 15) placed in f32 position (bias 127) to its value; exact, also for subnormals.
export const F16_MAGIC: f32 = 5.192296858534828e33;

/** f16 bits -> f32, exact. The same bit trick as the SIMD version (f16x4ToF32x4) so both agree on every input. */
@inline export function f16ToF32(h: u32): f32 {
  let bits = reinterpret<u32>(reinterpret<f32>((h & 0x7fff) << 13) * F16_MAGIC);
  if ((h & 0x7c00) == 0x7c00) bits |= 0x7f800000; // inf / nan
  return reinterpret<f32>(bits | ((h & 0x8000) << 16));
}

// f16x4ToF32x4's constants as vectors in memory (F16_MAGIC last, as its bits: 2^112), loaded once before a loop and
// passed in: as v128 immediates V8 (x64) rebuilt each one at every use (simd-util.ts, SPLATS), and loaded where used
// they still ran 0.69x of hoisted; the f16 widening of attention's K and V rows ran 1.7x faster hoisted than as immediates
const F16_CONSTS: usize = memory.data<u32>([0x7fff, 0x7fff, 0x7fff, 0x7fff, 0x7c00, 0x7c00, 0x7c00, 0x7c00,
  0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, 0x8000, 0x8000, 0x8000, 0x8000,
  0x77800000, 0x77800000, 0x77800000, 0x77800000], 16);

/** Constant k of f16x4ToF32x4 (0: magnitude mask, 1: exponent mask, 2: inf/nan bits, 3: sign mask, 4: F16_MAGIC). */
@inline export function f16Const(k: i32): v128 { return v128.load(F16_CONSTS + (<usize>k << 4)); }

/** Four f16 values, zero-extended into the i32 lanes of `h`, to f32x4; c0..c4 = f16Const(0..4), loaded by the caller. */
@inline export function f16x4ToF32x4(h: v128, c0: v128, c1: v128, c2: v128, c3: v128, c4: v128): v128 {
  let v = f32x4.mul(i32x4.shl(v128.and(h, c0), 13), c4);
  v = v128.or(v, v128.and(i32x4.eq(v128.and(h, c1), c1), c2)); // inf / nan
  return v128.or(v, i32x4.shl(v128.and(h, c3), 16));
}

// The finite f16 widening's constants as vectors (loaded once before a loop, as F16_CONSTS): the magnitude mask and
// the largest finite magnitude (0x7bff: above it the exponent is all ones) in i16 lanes, and 0x8fffffff in i32 lanes
const F16X8_CONSTS: usize = memory.data<u32>([0x7fff7fff, 0x7fff7fff, 0x7fff7fff, 0x7fff7fff, 0x7bff7bff, 0x7bff7bff,
  0x7bff7bff, 0x7bff7bff, 0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff], 16);

/** Constant k of the finite f16 widening (0: magnitude mask, 1: largest finite magnitude, 2: sign and magnitude bits). */
@inline export function f16x8Const(k: i32): v128 { return v128.load(F16X8_CONSTS + (<usize>k << 4)); }

/**
 * Four finite f16 values, sign-extended into the i32 lanes of `e`, to f32x4 with f16x4ToF32x4's bits: shifted left 13
 * the sign-extension leaves copies of the sign in bits 28..31, the mask (c2 = f16x8Const(2)) keeps bit 31 and the
 * magnitude, and the product with 2^112 (magic = f16Const(4)) rebiases the exponent, subnormals included. Four
 * operations where f16x4ToF32x4 takes ten; inf and nan (an all-ones exponent) come out wrong, so callers test their
 * values first (i16x8.gt_s(h & c0, c1): any lane set) and take f16x4ToF32x4 where one is.
 */
@inline export function finiteF16x4ToF32x4(e: v128, c2: v128, magic: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(e, 13), c2), magic);
}

/** Round-trip through f16 (what ggml's F16 matmul does to its f32 input). */
@inline export function roundF16(x: f32): f32 {
  return f16ToF32(f32ToF16(x));
}

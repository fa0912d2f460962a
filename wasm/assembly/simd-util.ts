// Small SIMD helpers shared by the dot kernels: horizontal sums in the lane order the scalar twins copy, and the
// scheduling fence that keeps V8 from spilling.

/** [a0+a2, a1+a3, b0+b2, b1+b3]: half of the horizontal sums of two i32x4. */
@inline export function pairSum(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
}

/** [sum(a), sum(b), sum(c), sum(d)] from pairSum(a, b) and pairSum(c, d). */
@inline export function finishSum(ab: v128, cd: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 2, 4, 6), v128.shuffle<i32>(ab, cd, 1, 3, 5, 7));
}

@inline export function hsumI32(a: v128): i32 {
  return i32x4.extract_lane(a, 0) + i32x4.extract_lane(a, 1) + i32x4.extract_lane(a, 2) + i32x4.extract_lane(a, 3);
}

/** (l0 + l2) + (l1 + l3), the lane order every twin uses. */
@inline export function hsumF32(a: v128): f32 {
  const t = f32x4.add(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
  return f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1);
}

// V8's TurboFan hoists every load of a loop body to its top (loads are ordered effects; the arithmetic floats down
// to its uses), so an unrolled body keeps all its loaded vectors live at once and spills. Storing an intermediate
// result is an effect the next loads must follow, which bounds the live vectors. The bytes are never read.
const FENCES: bool = true;
const FENCE: usize = memory.data(32, 16);

@inline export function fence(v: v128): void {
  if (FENCES) v128.store(FENCE, v);
}

@inline export function fence2(a: v128, b: v128): void {
  if (FENCES) { v128.store(FENCE, a); v128.store(FENCE, b, 16); }
}


// Constant vectors read from memory. V8 (x64) builds a v128 immediate at every use (a 64-bit move, a movq and a
// punpcklqdq), and Binaryen folds a constant kept in a local back into each use, so a mask written as a splat cost
// three instructions per use inside the hot loops. A load before the loop is one value, in a register or a stack slot.
const SPLATS: usize = memory.data<u8>([
  0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, 0x0f, // i8x16.splat(0x0f)
  1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, // i16x8.splat(1)
  0x0f, 0, 0x0f, 0, 0x0f, 0, 0x0f, 0, 0x0f, 0, 0x0f, 0, 0x0f, 0, 0x0f, 0, // i16x8.splat(0x0f)
  8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, // i8x16.splat(8)
], 16);

/** i8x16.splat(0x0f), the low-nibble mask, loaded (see SPLATS). */
@inline export function nibbleMask(): v128 { return v128.load(SPLATS); }
/** i16x8.splat(1), loaded (see SPLATS). */
@inline export function onesI16(): v128 { return v128.load(SPLATS, 16); }
/** i16x8.splat(0x0f), loaded (see SPLATS). */
@inline export function nibbleMaskI16(): v128 { return v128.load(SPLATS, 32); }
/** i8x16.splat(8), q4_0's offset, loaded (see SPLATS). */
@inline export function eightI8(): v128 { return v128.load(SPLATS, 48); }

// The f32 accumulators of the two-row four-token kernels' eight (row, token) pairs, kept in memory: with their eight
// i32 group sums they would not fit the fifteen vector registers V8 allocates, and a constant address is also a load
// without a bounds check in engines that check every other one (workerd; wasm/README.md).
export const ACC8: usize = memory.data(128, 16);

const LANES: usize = memory.data(16, 16);

// The scalar twins' f32 lane accumulators (block b's value to lane b % 4, as the SIMD kernels' f32x4), in memory so
// that a twin can take over a SIMD kernel's accumulator mid-row: lanesFrom(acc), laneAdd per block, lanesSum.
@inline export function lanesFrom(acc: v128): void { v128.store(LANES, acc); }
@inline export function laneAdd(b: i32, v: f32): void {
  const p = LANES + (<usize>(b & 3) << 2);
  store<f32>(p, load<f32>(p) + v);
}
/** (l0 + l2) + (l1 + l3), the lane order every twin uses. */
@inline export function lanesSum(): f32 { return hsumF32(v128.load(LANES)); }

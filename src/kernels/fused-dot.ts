// Which integer-dot path the relaxed kernels take on this engine: fused dot-adds where the engine lowers
// i32x4.relaxed_dot_i8x16_i7x16_add_s to one instruction, else the i16 dot + widening every x64 engine runs well.
//
// The relaxed-SIMD spec leaves the op's result implementation-defined when the second operand's high bit is set,
// so one call with a = 127, b = 0xff names the lowering without timing anything:
//   x64 AVX-VNNI vpdpbusd (V8 >= 13.x on such CPUs: workerd, Node 24): b unsigned, exact   -> 4 * 255 * 127 = 129540
//   x64 AVX-VNNI-INT8 vpdpbssd, arm64 sdot (or its emulation): b signed, exact             -> 4 * -127      = -508
//   x64 without VNNI (V8 12.x, Node 22; or Zen 4): pmaddubsw saturates each pair to i16,
//   then pmaddwd + paddd, 3 instructions and a constant                                   -> 2 * 32767     = 65534
// Where it is one instruction the fused path runs the q8_0 expert FFN 1.23-1.37x and q4_0's at 4-64 tokens 1.2-1.3x in
// Node 24 and 26 on this Zen 5, 1.04-1.09x and ~1.0x in local workerd (wasm/README.md); where it is emulated (Node 22)
// 0.65-0.86x, hence the probe. Results are the same exact integers either way (conformance runs both paths).
// arm64 without the dot-product extension also answers -508 and takes the fused path: Workers' arm64 hosts
// (Neoverse N1 and later) have it.
export const FUSED_UNSIGNED = 4 * 255 * 127;
export const FUSED_SIGNED = 4 * -127;
export const EMULATED_SATURATED = 2 * 32767;

/** An executor's name for reports: the relaxed one says when it runs fused dot-adds (and reads q4_0 nibbles unsigned). */
export function kernelsLabel(k: { name: string; fusedDot?: boolean; unsignedDots?: boolean }): string {
  return k.fusedDot ? `${k.name} (fused dots${k.unsignedDots ? ', unsigned' : ''})` : k.name;
}

/** True when `probe(127, 0xff)` (the module's fused_dot_probe) shows a one-instruction lowering. */
export function engineFusesDots(probe: (a: number, b: number) => number): boolean {
  const r = probe(127, 0xff);
  return r === FUSED_UNSIGNED || r === FUSED_SIGNED;
}

/**
 * True when the fused dot-add reads its second operand as unsigned bytes, exactly (vpdpbusd): the packed q4_0
 * mat-vec may then multiply high nibbles in place, 16 q in 0..240, and packed q8_0 stores its weights as
 * w + 128 in 0..255 (UNSIGNED_DOTS in wasm/assembly/common.ts), values the spec leaves to the engine. Liftoff and TurboFan lower the op through one V8 macro-assembler routine, so
 * the probe's answer holds for the optimized kernels too; the conformance suite runs that path wherever it is true.
 * Granite's q4_0 expert FFN at batch 1 1.2x; q8_0's at 4-64 tokens 1.22-1.31x with activations + 128, then
 * 1.01-1.06x more with the weights + 128 instead (wasm/README.md).
 */
export function engineDotsUnsigned(probe: (a: number, b: number) => number): boolean {
  return probe(127, 0xff) === FUSED_UNSIGNED;
}

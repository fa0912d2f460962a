// Runtime feature probe: does this engine accept relaxed-SIMD? WebAssembly.validate needs no compilation, so it
// also works in workerd, where compiling bytes at run time is forbidden.

// (module (func (param v128 v128 v128) (result v128)
//   local.get 0 local.get 1 local.get 2 i32x4.relaxed_dot_i8x16_i7x16_add_s))
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // type section: (v128 v128 v128) -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x0d, 0x01, 0x0b, 0x00, // code section: one body of 11 bytes, no locals
  0x20, 0x00, 0x20, 0x01, 0x20, 0x02, // local.get 0, 1, 2
  0xfd, 0x93, 0x02, // i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x113)
  0x0b, // end
]);

let cached: boolean | undefined;

export function supportsRelaxedSimd(): boolean {
  cached ??= WebAssembly.validate(RELAXED_PROBE);
  return cached;
}

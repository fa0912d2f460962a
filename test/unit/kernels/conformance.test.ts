// The one kernel conformance suite, run over every executor: the TypeScript reference and the three WASM
// builds (scalar, SIMD, relaxed SIMD), the last on each of its integer-dot paths (i16 dots, fused dot-adds, fused
// dot-adds reading bytes unsigned: q4_0 nibbles in place, q8_0 weights + 128; src/kernels/fused-dot.ts),
// whichever this engine would pick; the unsigned one only where the engine's dot-add reads bytes unsigned. A missing .wasm build fails; only an unsupported
// runtime skips.
import { createReferenceKernels } from '../../../src/kernels/reference';
import { describeExecutor } from './describe-executor';

// A minimal module whose one function uses i8x16.relaxed_swizzle: it validates only where relaxed SIMD is on.
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
  0x03, 0x02, 0x01, 0x00, // func 0: type 0
  0x0a, 0x2b, 0x01, 0x29, 0x00, // code: one body of 41 bytes, no locals
  0xfd, 0x0c, ...new Array(16).fill(0), // v128.const 0
  0xfd, 0x0c, ...new Array(16).fill(0), // v128.const 0
  0xfd, 0x80, 0x02, // i8x16.relaxed_swizzle
  0x0b, // end
]);
const relaxedSupported = WebAssembly.validate(RELAXED_PROBE);


// Imported lazily so that a broken or unbuilt WASM loader fails its own executors, not ts-ref as well.
async function wasm(variant: 'scalar' | 'simd' | 'relaxed', fusedDot?: boolean, unsignedDots?: boolean) {
  const { loadNodeKernels } = await import('../../../src/kernels/load-node');
  return loadNodeKernels(variant, { fusedDot, unsignedDots });
}

describeExecutor('ts-ref', async () => createReferenceKernels());
describeExecutor('wasm-scalar', () => wasm('scalar'));
describeExecutor('wasm-simd', () => wasm('simd'));
const noRelaxed = relaxedSupported ? undefined : `relaxed SIMD is not supported by this runtime (Node ${process.versions.node})`;
describeExecutor('wasm-relaxed', () => wasm('relaxed', false), noRelaxed);
describeExecutor('wasm-relaxed-fused', () => wasm('relaxed', true, false), noRelaxed);
describeExecutor('wasm-relaxed-fused-unsigned', () => wasm('relaxed', true, true), noRelaxed ?? (await (await import('./relaxed-paths')).unsignedDotsSkip()));

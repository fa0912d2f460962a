// The relaxed build's integer-dot paths a kernel test runs (src/kernels/fused-dot.ts): the i16 dots, fused dot-adds,
// and fused dot-adds reading bytes unsigned (UNSIGNED_DOTS) where this engine's dot-add does so exactly.
import { engineDotsUnsigned } from '../../../src/kernels/fused-dot';
import { loadNodeKernelModules } from '../../../src/kernels/load-node';
import { instantiateKernels, type WasmKernelOptions } from '../../../src/kernels/wasm';
import { supportsRelaxedSimd } from '../../../src/kernels/wasm-features';

/** Why the unsigned-dots path cannot run here, or undefined where it can. */
export async function unsignedDotsSkip(): Promise<string | undefined> {
  if (!supportsRelaxedSimd()) return `relaxed SIMD is not supported by this runtime (Node ${process.versions.node})`;
  const { relaxed } = await loadNodeKernelModules();
  const { ex } = instantiateKernels(relaxed!);
  return engineDotsUnsigned(ex.fused_dot_probe) ? undefined : `this engine's fused dot-add does not read bytes unsigned (probe ${ex.fused_dot_probe(127, 0xff)})`;
}

/** [name suffix, options] of each relaxed path this runtime can run (none without relaxed SIMD). */
export async function relaxedDotPaths(): Promise<[string, WasmKernelOptions][]> {
  if (!supportsRelaxedSimd()) return [];
  const paths: [string, WasmKernelOptions][] = [['', { fusedDot: false }], ['-fused', { fusedDot: true, unsignedDots: false }]];
  if (!(await unsignedDotsSkip())) paths.push(['-fused-unsigned', { fusedDot: true, unsignedDots: true }]);
  return paths;
}

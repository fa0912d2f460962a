// Picks a kernel executor by name for Node tools and tests (default: the fastest WASM build this runtime validates).
import { createReferenceKernels } from '../src/kernels/reference';
import { loadNodeKernels } from '../src/kernels/load-node';
import type { Kernels } from '../src/kernels/types';

// wasm-relaxed takes the integer-dot path this engine runs fast (src/kernels/fused-dot.ts); wasm-relaxed-fused forces
// the fused dot-adds (same results; slower where the engine emulates them, as Node 22 does)
export const EXECUTORS = ['ts-ref', 'wasm-scalar', 'wasm-simd', 'wasm-relaxed', 'wasm-relaxed-fused', 'wasm'] as const;
export type ExecutorName = (typeof EXECUTORS)[number];

export async function makeKernels(name: ExecutorName = 'wasm'): Promise<Kernels> {
  switch (name) {
    case 'ts-ref': return createReferenceKernels();
    case 'wasm-scalar': return loadNodeKernels('scalar');
    case 'wasm-simd': return loadNodeKernels('simd');
    case 'wasm-relaxed': return loadNodeKernels('relaxed');
    case 'wasm-relaxed-fused': return loadNodeKernels('relaxed', { fusedDot: true });
    case 'wasm': return loadNodeKernels();
  }
}

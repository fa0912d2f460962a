// q8_0 activations in a kernel heap (xq: int8 quants, xd: one f16 scale per 32-block): reading them, and the one
// path for experts whose gate/up take floats, which get the dequantized X (exact: q * d fits in f32).
import { dequantize, QK } from '../format/quant';
import type { Heap, Ptr } from './heap';
import type { Kernels, Mat } from './types';

/** xq (n) int8 and xd (n/32) f16 in the heap -> views (fresh: the heap may have grown since they were written). */
export function q8Views(heap: Heap, xq: Ptr, xd: Ptr, n: number): { qs: Int8Array; d: Uint16Array } {
  return { qs: new Int8Array(heap.memory.buffer, xq, n), d: new Uint16Array(heap.memory.buffer, xd, n / QK) };
}

/** ffnSwiglu on x = xq * xd, dequantized into scratch: for gate/up that do not read q8_0 blocks (float, or mixed). */
export function ffnOnDequantized(k: Kernels, gate: Mat, up: Mat, down: Mat, xq: Ptr, xd: Ptr, y: Ptr, nTok: number): void {
  const n = nTok * gate.cols;
  const x = k.heap.alloc(n * 4);
  try {
    const { qs, d } = q8Views(k.heap, xq, xd, n);
    k.heap.f32(x, n).set(dequantize({ dtype: 'q8_0', qs: new Uint8Array(qs.buffer, qs.byteOffset, n), d }));
    k.ffnSwiglu(gate, up, down, x, y, nTok);
  } finally {
    k.heap.release(x);
  }
}

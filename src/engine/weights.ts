// Moves tensors from verified shard bytes into the kernel heap as `Mat`s (layout: src/format/tensor-layout.ts).
// Weights are loaded once per isolate and shared read-only by every generation.
import { ManifestError, type TensorEntry } from '../format/manifest';
import { isQuantized, memoryBytes, quantBytes, scaleCount } from '../format/quant';
import { matrixOf, shardOf, widenScales } from '../format/tensor-layout';
import type { Kernels, Mat, Ptr } from '../kernels/types';

/** A 1-D f32 vector (norm weights, biases) in the heap. */
export interface Vec {
  readonly n: number;
  readonly data: Ptr;
}

/** Copy one tensor (its bytes inside `object`) into the heap: quants as stored, scales widened straight into place. */
export function uploadMat(k: Kernels, entry: TensorEntry, object: Uint8Array): Mat {
  const shard = shardOf(entry, object); // ManifestError when the entry does not fit its object
  const { dtype, rows, cols } = matrixOf(entry);
  const n = rows * cols;
  const ptr = k.heap.alloc(memoryBytes(dtype, n));
  const qb = quantBytes(dtype, n);
  k.heap.u8(ptr, qb).set(shard.subarray(0, qb));
  let scales = 0;
  if (isQuantized(dtype)) {
    scales = ptr + qb;
    widenScales(dtype, n, shard, k.heap.f32(scales, scaleCount(dtype, n)));
  }
  return { dtype, rows, cols, data: ptr, scales };
}

export function uploadVec(k: Kernels, entry: TensorEntry, object: Uint8Array): Vec {
  if (entry.dtype !== 'f32' || entry.shape.length !== 1) throw new ManifestError(`tensor in ${entry.object} at offset ${entry.offset}: expected a 1-D f32 tensor, got ${entry.dtype} ${JSON.stringify(entry.shape)}`);
  const m = uploadMat(k, entry, object);
  return { n: m.cols, data: m.data };
}

export function releaseMat(k: Kernels, m: Mat | Vec): void {
  k.heap.release(m.data);
}

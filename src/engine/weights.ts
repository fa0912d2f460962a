// Moves tensors from verified shard bytes into the kernel heap as `Mat`s (scales widened f16 -> f32).
// Weights are loaded once per isolate and shared read-only by every generation.
import { ManifestError, type TensorEntry } from '../format/manifest';
import { halfToFloatTable, isQuantized, memoryBytes, QK, quantBytes, scaleCount, shardBytes, type DType } from '../format/quant';
import type { Kernels, Mat, Ptr } from '../kernels/types';

/** A 1-D f32 vector (norm weights, biases) in the heap. */
export interface Vec {
  readonly n: number;
  readonly data: Ptr;
}

/** Copy one tensor (its bytes inside `object`) into the heap. 1-D tensors must be f32. */
export function uploadMat(k: Kernels, entry: TensorEntry, object: Uint8Array): Mat {
  const [rows, cols] = entry.shape.length === 2 ? entry.shape : [1, entry.shape[0]];
  const n = rows * cols;
  const dtype = entry.dtype as DType;
  // The digest proves the object is the one the manifest names; this proves the entry fits in it, so a
  // manifest from a broken converter fails here by name instead of loading garbage or reading past the end.
  const stored = n % QK === 0 || !isQuantized(dtype) ? shardBytes(dtype, n) : NaN;
  if (entry.bytes !== stored || entry.offset + entry.bytes > object.length) {
    throw new ManifestError(
      `tensor in ${entry.object} at offset ${entry.offset}: ${entry.bytes} bytes for ${dtype} ${JSON.stringify(entry.shape)} ` +
        `(that shape needs ${stored}), in an object of ${object.length} bytes`,
    );
  }
  const src = object.subarray(entry.offset, entry.offset + entry.bytes);
  const ptr = k.heap.alloc(memoryBytes(dtype, n));
  const qb = quantBytes(dtype, n);
  k.heap.u8(ptr, qb).set(src.subarray(0, qb));
  let scales = 0;
  if (isQuantized(dtype)) {
    scales = ptr + qb;
    const count = scaleCount(dtype, n);
    const halves = new Uint16Array(src.slice(qb, qb + count * 2).buffer);
    const out = k.heap.f32(scales, count);
    const table = halfToFloatTable();
    for (let i = 0; i < count; i++) out[i] = table[halves[i]];
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

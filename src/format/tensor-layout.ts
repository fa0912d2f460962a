// One tensor from its shard bytes to the kernel-memory layout of quant.ts (quants or values as stored, f16
// scales widened to f32): the split shared by the Worker's heap loader and the backend's devices.
import { ManifestError, type TensorEntry } from './manifest';
import { halfToFloatTable, isQuantized, QK, quantBytes, scaleCount, shardBytes, type DType } from './quant';

/** A tensor W (rows, cols) in kernel-memory layout; `data` may be a view of the shard it came from. */
export interface HostTensor {
  dtype: DType;
  rows: number;
  cols: number;
  data: Uint8Array;
  scales: Float32Array | null; // one per 32-block; null for f32/f16
}

/** The matrix an entry describes: [rows, cols] as given, a vector [n] as one row. */
export function matrixOf(entry: TensorEntry): { dtype: DType; rows: number; cols: number } {
  const [rows, cols] = entry.shape.length === 2 ? entry.shape : [1, entry.shape[0]];
  return { dtype: entry.dtype, rows, cols };
}

/**
 * The shard bytes of `entry` inside `object`. The digest proves the object is the one the manifest names; this
 * proves the entry fits in it (its size is its shape's, each quantized row is whole blocks, it ends inside the
 * object), so a manifest from a broken converter fails here by name instead of loading garbage or reading past
 * the end.
 */
export function shardOf(entry: TensorEntry, object: Uint8Array): Uint8Array {
  checkShard(entry, object.length);
  return object.subarray(entry.offset, entry.offset + entry.bytes);
}

/** shardOf's check alone, against an object's size (a streamed load checks every entry before the first byte arrives). */
export function checkShard(entry: TensorEntry, objectBytes: number): void {
  const { dtype, rows, cols } = matrixOf(entry);
  const stored = cols % QK === 0 || !isQuantized(dtype) ? shardBytes(dtype, rows * cols) : NaN;
  if (entry.bytes !== stored || entry.offset + entry.bytes > objectBytes) {
    throw new ManifestError(
      `tensor in ${entry.object} at offset ${entry.offset}: ${entry.bytes} bytes for ${dtype} ${JSON.stringify(entry.shape)} ` +
        `(that shape needs ${stored}), in an object of ${objectBytes} bytes`,
    );
  }
}

/** Widens the f16 scales that follow the quants in `shard` (a tensor of `n` elements) into `out`, wherever it lives. */
export function widenScales(dtype: DType, n: number, shard: Uint8Array, out: Float32Array): void {
  const count = scaleCount(dtype, n);
  if (out.length !== count) throw new RangeError(`widenScales: ${dtype} of ${n} elements has ${count} scales, got room for ${out.length}`);
  const qb = quantBytes(dtype, n);
  writeShardPart(dtype, n, shard.subarray(qb, qb + 2 * count), qb, new Uint8Array(0), out);
}

/**
 * Writes the part of one tensor's shard that `part` holds (part[0] is shard byte `at`) into its kernel-memory
 * layout: quants or values copied into `data` (quantBytes long), f16 scales widened into `scales` (null for
 * f32/f16). Parts may split anywhere, also inside a scale: the first byte of a split scale waits in that scale's
 * own f32 slot (a byte value, exact in f32) until the part holding its second byte comes, so a streamed load
 * keeps no state between chunks. Parts must come in order for a split scale; all else may come in any order.
 */
export function writeShardPart(dtype: DType, n: number, part: Uint8Array, at: number, data: Uint8Array, scales: Float32Array | null): void {
  const qb = quantBytes(dtype, n);
  const end = at + part.length;
  if (end > qb + (scales ? 2 * scales.length : 0)) throw new RangeError(`writeShardPart: bytes ${at}..${end} outside a ${dtype} shard of ${n} elements`);
  if (at < qb) data.set(part.subarray(0, Math.min(part.length, qb - at)), at);
  if (!scales || end <= qb) return;
  const table = halfToFloatTable();
  let p = Math.max(at, qb); // shard offset of the next byte to place
  if ((p - qb) & 1) {
    const i = (p - qb) >> 1; // the second byte of a scale split across parts: its first byte waits in scales[i]
    scales[i] = table[scales[i] | (part[p - at] << 8)];
    p++;
  }
  // byte by byte: the scales may start at any offset of the object, too unaligned for a Uint16Array view (an
  // aligned u16 path measured ~1 ns a scale faster, ~1% of a granite load, whose cost is first-touching its pages)
  for (; p + 1 < end; p += 2) scales[(p - qb) >> 1] = table[part[p - at] | (part[p + 1 - at] << 8)];
  if (p < end) scales[(p - qb) >> 1] = part[p - at];
}

/** Shard bytes of `entry` inside `object` -> kernel-memory layout: the quants as a view, the scales widened into a new array. */
export function hostTensor(entry: TensorEntry, object: Uint8Array): HostTensor {
  const shard = shardOf(entry, object);
  const { dtype, rows, cols } = matrixOf(entry);
  const n = rows * cols;
  const data = shard.subarray(0, quantBytes(dtype, n));
  if (!isQuantized(dtype)) return { dtype, rows, cols, data, scales: null };
  const scales = new Float32Array(scaleCount(dtype, n));
  widenScales(dtype, n, shard, scales);
  return { dtype, rows, cols, data, scales };
}

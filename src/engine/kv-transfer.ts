// A layer's KV-cache rows copied out of and into the kernel heap as contiguous bytes (K's run, then V's), in the
// cache's own layout (src/format/quant.ts: values or quants, then f32 scales): what the prefill call carries, so
// the backend's cache and the Worker's hold the same bytes.
import { isQuantized, quantBytes, scaleCount } from '../format/quant';
import type { Mat } from '../kernels/types';
import type { Heap } from '../kernels/heap';
import type { Sequence } from './forward';

/** Bytes of rows pos0..pos0+n-1 of one cache Mat: [values | quants, then f32 scales]. */
function runs(m: Mat, pos0: number, n: number): { at: number; bytes: number }[] {
  const out = [{ at: m.data + quantBytes(m.dtype, pos0 * m.cols), bytes: quantBytes(m.dtype, n * m.cols) }];
  if (isQuantized(m.dtype)) out.push({ at: m.scales + 4 * scaleCount(m.dtype, pos0 * m.cols), bytes: 4 * scaleCount(m.dtype, n * m.cols) });
  return out;
}

/** K then V rows pos0..pos0+n-1 of layer `l`, copied into `out` (its length must be exactly theirs). */
export function readKvRows(heap: Heap, seq: Sequence, l: number, pos0: number, n: number, out: Uint8Array): void {
  let o = 0;
  for (const m of [seq.kCache[l], seq.vCache[l]]) {
    for (const r of runs(m, pos0, n)) {
      out.set(heap.u8(r.at, r.bytes), o);
      o += r.bytes;
    }
  }
  if (o !== out.length) throw new RangeError(`readKvRows: ${out.length} bytes asked for, ${o} are K and V of ${n} rows`);
}

/** The inverse: `rows` (K's run then V's) into layer `l`'s cache at positions pos0..pos0+n-1. */
export function writeKvRows(heap: Heap, seq: Sequence, l: number, pos0: number, n: number, rows: Uint8Array): void {
  if (pos0 + n > seq.capacity) throw new RangeError(`writeKvRows: positions ${pos0}-${pos0 + n - 1} are beyond the cache's ${seq.capacity}`);
  let o = 0;
  for (const m of [seq.kCache[l], seq.vCache[l]]) {
    for (const r of runs(m, pos0, n)) {
      if (o + r.bytes > rows.length) throw new RangeError(`writeKvRows: ${rows.length} bytes are fewer than K and V of ${n} rows`);
      heap.u8(r.at, r.bytes).set(rows.subarray(o, o + r.bytes));
      o += r.bytes;
    }
  }
  if (o !== rows.length) throw new RangeError(`writeKvRows: ${rows.length} bytes are more than K and V of ${n} rows`);
}

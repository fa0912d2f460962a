// KvRows (a layer's K or V cache as attention takes it) normalised to a Mat, and the shape rule quantized caches
// follow; shared by every executor so they accept and refuse the same caches.
import { QK, isQuantized } from '../format/quant';
import type { KvRows, Mat } from './types';

/** A bare pointer is `nPos` f32 rows of `cols`; a Mat must have those columns and at least `nPos` rows. */
export function asKvMat(rows: KvRows, nPos: number, cols: number): Mat {
  if (typeof rows === 'number') return { dtype: 'f32', rows: nPos, cols, data: rows, scales: 0 };
  if (rows.cols !== cols) throw new RangeError(`attention: the KV cache has ${rows.cols} columns, nKvHead*headDim is ${cols}`);
  if (rows.rows < nPos) throw new RangeError(`attention: the KV cache holds ${rows.rows} positions, ${nPos} are attended`);
  return rows;
}

/** Quantized blocks must not straddle two heads: each head of a row is dotted (or read) on its own. */
export function checkKvHeads(k: Mat, v: Mat, headDim: number): void {
  for (const m of [k, v]) {
    if (isQuantized(m.dtype) && headDim % QK !== 0) throw new RangeError(`attention: a ${m.dtype} KV cache needs headDim % ${QK} == 0, got headDim ${headDim}`);
  }
}

// Row access into llama.cpp's own GGUF files in ../shared/fixtures, through tools/convert/gguf.ts, to compare the
// tensor rows of our converted models with them (f32 and Q8_0 tensors, llama.cpp's q/k row permutation).
import { ggmlBytes, ggmlToShard, isDType, readGguf as readGgufFile } from '../../../tools/convert/gguf';
import { QK } from '../../../src/format/quant';

export interface GgufTensor {
  cols: number;
  /** one row in our shard layout: f32 values, or [qs][f16 scales] for Q8_0 */
  row(r: number): Uint8Array;
}

export function readGguf(b: Uint8Array): Map<string, GgufTensor> {
  return new Map(
    readGgufFile(b).tensors.map((t) => {
      const cols = t.dims[0];
      const dtype = t.dtype;
      if (!isDType(dtype)) throw new Error(`${t.name}: fixture tensors are f32/f16/q8_0/q4_0, not ${dtype}`);
      const rowBytes = ggmlBytes(dtype, cols);
      const row = (r: number) => ggmlToShard(dtype, t.data.subarray(r * rowBytes, (r + 1) * rowBytes), cols);
      return [t.name, { cols, row }];
    }),
  );
}

export function ourRow(dtype: string, bytes: Uint8Array, rows: number, cols: number, r: number): Uint8Array {
  if (dtype === 'f32') return bytes.subarray(r * cols * 4, (r + 1) * cols * 4);
  const d = rows * cols; // q8_0: quants, then f16 scales
  const out = new Uint8Array(cols + (cols / QK) * 2);
  out.set(bytes.subarray(r * cols, (r + 1) * cols));
  out.set(bytes.subarray(d + (r * cols / QK) * 2, d + ((r + 1) * cols / QK) * 2), cols);
  return out;
}

/** Row of llama.cpp's permuted q/k weight holding HF row r: reshape(heads, 2, hd/2) -> swap -> (heads, hd/2, 2). */
export function permutedRow(r: number, headDim: number): number {
  const h = Math.floor(r / headDim);
  const i = Math.floor((r % headDim) / (headDim / 2));
  const j = r % (headDim / 2);
  return h * headDim + j * 2 + i;
}

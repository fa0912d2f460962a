// A minimal GGUF v3 reader for tests: enough to compare tensor rows of our converted models with the rows of
// llama.cpp's own files in ../shared/fixtures (f32 and Q8_0 tensors, llama.cpp's q/k row permutation).
import { expect } from 'vitest';
import { QK } from '../../../src/format/quant';

export interface GgufTensor {
  cols: number;
  /** one row in our shard layout: f32 values, or [qs][f16 scales] for Q8_0 */
  row(r: number): Uint8Array;
}

export function readGguf(b: Uint8Array): Map<string, GgufTensor> {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 4;
  const u32 = (): number => ((p += 4), v.getUint32(p - 4, true));
  const u64 = (): number => ((p += 8), Number(v.getBigUint64(p - 8, true)));
  const str = (): string => {
    const n = u64();
    return new TextDecoder().decode(b.subarray(p, (p += n)));
  };
  const scalarBytes: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number): unknown => {
    if (type === 8) return str();
    if (type === 9) {
      const inner = u32();
      return Array.from({ length: u64() }, () => value(inner));
    }
    if (type === 4) return u32();
    p += scalarBytes[type];
    return undefined;
  };
  expect(new TextDecoder().decode(b.subarray(0, 4))).toBe('GGUF');
  expect(u32()).toBe(3);
  const nTensors = u64();
  const nKv = u64();
  const kv = new Map<string, unknown>();
  for (let i = 0; i < nKv; i++) kv.set(str(), value(u32()));
  const infos = Array.from({ length: nTensors }, () => {
    const name = str();
    const dims = Array.from({ length: u32() }, u64);
    return { name, dims, type: u32(), offset: u64() };
  });
  const align = (kv.get('general.alignment') as number | undefined) ?? 32;
  const data = Math.ceil(p / align) * align;
  return new Map(
    infos.map(({ name, dims, type, offset }) => {
      const cols = dims[0];
      const row = (r: number): Uint8Array => {
        if (type === 0) return b.subarray(data + offset + r * cols * 4, data + offset + (r + 1) * cols * 4);
        expect(type).toBe(8); // Q8_0: blocks of { f16 d; int8 qs[32] }
        const nb = cols / QK;
        const blocks = b.subarray(data + offset + r * nb * 34, data + offset + (r + 1) * nb * 34);
        const out = new Uint8Array(nb * 34);
        for (let k = 0; k < nb; k++) {
          out.set(blocks.subarray(k * 34 + 2, k * 34 + 34), k * QK);
          out.set(blocks.subarray(k * 34, k * 34 + 2), cols + k * 2);
        }
        return out;
      };
      return [name, { cols, row }];
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

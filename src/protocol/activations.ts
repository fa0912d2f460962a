// Token activations as they travel: the dtypes, the Worker's encoding (gathered and quantized straight from its
// heap), the row operations both sides use, and the widening to f32 for a consumer that takes only floats.
import type { DType } from '../format/quant';
import { f32ToF16, halfToFloatTable, QK, quantizeQ8_0Into } from '../format/quant';

export type ActDType = 'f32' | 'f16' | 'q8_0';

/**
 * Token activations x (nTok, hidden), row-major. q8_0 is src/format/quant.ts's layout (quants, then one f16 scale
 * per 32-block): ggml's activation quantization, exactly what the kernels make of the dequantized values.
 */
export type Activations =
  | { readonly dtype: 'f32'; readonly data: Float32Array }
  | { readonly dtype: 'f16'; readonly data: Uint16Array }
  | { readonly dtype: 'q8_0'; readonly qs: Int8Array; readonly d: Uint16Array };

/**
 * The activation dtype that keeps remote experts exact: q8_0 for quantized experts (the kernel would quantize
 * x to exactly these blocks), f32 for float experts.
 */
export function activationDTypeFor(expertDType: DType): ActDType {
  return expertDType === 'q8_0' || expertDType === 'q4_0' ? 'q8_0' : 'f32';
}

/**
 * Rows `rows` of x (*, hidden) f32, encoded as `dtype` in one pass: each row is read once, from where it lies
 * (e.g. a view of the kernels' heap), and written once (q8_0: ggml's activation quantization, per 32-block).
 */
export function encodeRows(x: Float32Array, hidden: number, rows: readonly number[], dtype: ActDType): Activations {
  const out = allocRows(dtype, rows.length, hidden);
  rows.forEach((r, i) => {
    const src = x.subarray(r * hidden, r * hidden + hidden);
    if (out.dtype === 'f32') out.data.set(src, i * hidden);
    else if (out.dtype === 'f16') for (let j = 0; j < hidden; j++) out.data[i * hidden + j] = f32ToF16(src[j]);
    else quantizeQ8_0Into(src, out.qs.subarray(i * hidden, i * hidden + hidden), out.d.subarray((i * hidden) / QK, ((i + 1) * hidden) / QK));
  });
  return out;
}

/** All of x (f32 as it is, without a copy); x.length must be a multiple of 32 for q8_0. */
export function encodeActivations(x: Float32Array, dtype: ActDType): Activations {
  return dtype === 'f32' ? { dtype, data: x } : encodeRows(x, x.length, [0], dtype);
}

/** n rows of `hidden` zeros in `dtype` (q8_0 needs hidden % 32 == 0: no block straddles two rows). */
export function allocRows(dtype: ActDType, n: number, hidden: number): Activations {
  if (dtype === 'f32') return { dtype, data: new Float32Array(n * hidden) };
  if (dtype === 'f16') return { dtype, data: new Uint16Array(n * hidden) };
  if (hidden % QK !== 0) throw new RangeError(`q8_0 activations need hidden % ${QK} == 0, got ${hidden}`);
  return { dtype, qs: new Int8Array(n * hidden), d: new Uint16Array((n * hidden) / QK) };
}

/** Row `row` of src -> row `at` of dst, as it is (both of one dtype). */
export function copyRow(src: Activations, row: number, dst: Activations, at: number, hidden: number): void {
  if (src.dtype !== dst.dtype) throw new TypeError(`copyRow: ${src.dtype} row into ${dst.dtype} rows`);
  if (src.dtype === 'q8_0') {
    const d = dst as typeof src;
    d.qs.set(src.qs.subarray(row * hidden, row * hidden + hidden), at * hidden);
    const nb = hidden / QK;
    d.d.set(src.d.subarray(row * nb, row * nb + nb), at * nb);
  } else {
    (dst as typeof src).data.set(src.data.subarray(row * hidden, row * hidden + hidden) as never, at * hidden);
  }
}

/** Rows `rows` of activations x (*, hidden), as they are. */
export function selectRows(a: Activations, hidden: number, rows: readonly number[]): Activations {
  const out = allocRows(a.dtype, rows.length, hidden);
  rows.forEach((r, i) => copyRow(a, r, out, i, hidden));
  return out;
}

/**
 * Activations -> f32, for a consumer that takes only floats (f32: the same array; q8_0: q * d, exact in f32 since
 * 8 x 11 significant bits fit in 24).
 */
export function activationsToF32(a: Activations): Float32Array {
  if (a.dtype === 'f32') return a.data;
  const half = halfToFloatTable();
  if (a.dtype === 'f16') {
    const out = new Float32Array(a.data.length);
    for (let i = 0; i < out.length; i++) out[i] = half[a.data[i]];
    return out;
  }
  const out = new Float32Array(a.qs.length);
  for (let b = 0; b < a.d.length; b++) {
    const d = half[a.d[b]];
    for (let j = b * QK; j < b * QK + QK; j++) out[j] = a.qs[j] * d;
  }
  return out;
}

// Block formats (f32, f16, q8_0, q4_0): the single source of truth for sizes, layouts and the reference
// quantize/dequantize. Values are ggml-compatible, so GGUF tensors import losslessly and llama.cpp is an exact reference.
//
// Layout of one tensor W (rows, cols), row-major, in a shard and (after load) in kernel memory:
//   f32   rows*cols float32 little-endian
//   f16   rows*cols IEEE half, little-endian
//   q8_0  [qs: rows*cols int8][d: rows*cols/32 scales]            value = qs[i] * d[i/32]
//   q4_0  [qs: rows*cols/2 bytes][d: rows*cols/32 scales]         value = (nibble - 8) * d[i/32]
//         each 32-block owns 16 bytes; byte j holds element j in its low nibble and element j+16 in its
//         high nibble (ggml's block_q4_0.qs order).
// In a shard the scales are f16 (ggml's block_q8_0/block_q4_0 `d`); in kernel memory they are widened to
// f32 (lossless) so SIMD kernels need no half-float decode in the inner loop. Quants and scales sit in
// separate arrays instead of ggml's interleaved blocks, so a row's quants are one contiguous SIMD stream.

export const QK = 32; // elements per quant block (ggml QK8_0 == QK4_0 == 32)

export type DType = 'f32' | 'f16' | 'q8_0' | 'q4_0';
export const DTYPES: readonly DType[] = ['f32', 'f16', 'q8_0', 'q4_0'];

export function isQuantized(dtype: DType): dtype is 'q8_0' | 'q4_0' {
  return dtype === 'q8_0' || dtype === 'q4_0';
}

/** Bytes of the quant (or value) array of `n` elements. */
export function quantBytes(dtype: DType, n: number): number {
  switch (dtype) {
    case 'f32': return n * 4;
    case 'f16': return n * 2;
    case 'q8_0': return n;
    case 'q4_0': return n / 2;
  }
}

/** Number of scales for `n` elements (0 for float formats). */
export function scaleCount(dtype: DType, n: number): number {
  return isQuantized(dtype) ? n / QK : 0;
}

/** Bytes of a tensor of `n` elements as stored in a shard (scales as f16). */
export function shardBytes(dtype: DType, n: number): number {
  checkBlockable(dtype, n);
  return quantBytes(dtype, n) + scaleCount(dtype, n) * 2;
}

/** Bytes of a tensor of `n` elements in kernel memory (scales widened to f32). */
export function memoryBytes(dtype: DType, n: number): number {
  checkBlockable(dtype, n);
  return quantBytes(dtype, n) + scaleCount(dtype, n) * 4;
}

/** Bits per weight as stored (q8_0: 8.5, q4_0: 4.5, as in ggml). */
export function bitsPerWeight(dtype: DType): number {
  return (shardBytes(dtype, QK) * 8) / QK;
}

function checkBlockable(dtype: DType, n: number): void {
  if (isQuantized(dtype) && n % QK !== 0) throw new RangeError(`${dtype} needs a multiple of ${QK} elements, got ${n}`);
}

/** A tensor can be stored as `dtype` when every row is a whole number of blocks. */
export function canQuantizeRows(dtype: DType, cols: number): boolean {
  return !isQuantized(dtype) || cols % QK === 0;
}

// ---- IEEE half <-> float (round to nearest even, as ggml's GGML_FP32_TO_FP16 on x86 F16C) ----

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f32ToF16(value: number): number {
  f32buf[0] = value;
  const x = u32buf[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) r++; // may carry into the exponent: still correct
  return sign | r;
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// f16 -> f32 for all 65536 halves: model loads widen millions of scales, the backend widens activations.
let halfTable: Float32Array | undefined;

/** f16ToF32 of every half, as a table (built once per isolate, 256 KiB). */
export function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = f16ToF32(h);
  }
  return halfTable;
}

/** Round a float to the nearest f16 value (what a value looks like after a trip through half precision). */
export function roundF16(value: number): number {
  return f16ToF32(f32ToF16(value));
}

// ---- reference quantization (ggml's quantize_row_q8_0 / quantize_row_q4_0 in value) ----

export interface QuantizedTensor {
  dtype: 'q8_0' | 'q4_0';
  qs: Uint8Array; // quants (int8 for q8_0 viewed as bytes; packed nibbles for q4_0)
  d: Uint16Array; // f16 scales, one per 32-block
}

/** Round half to even, as SIMD `nearest` and x86 `_mm256_round_ps(_MM_ROUND_NEAREST)` do. */
export function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * q8_0 of a float vector (length a multiple of 32): d = amax/127 stored as f16, q = round(x * id) computed in
 * float32 with the unrounded d. ggml has two flavours that differ in the last bit, and ties flip with them
 * (~1e-2 on the llama.cpp fixture logits), so both are kept exactly:
 *   'activation' — ggml's x86 SIMD quantize_row_q8_0, used on the input of every q8_0/q4_0 matmul:
 *                  id = 127/amax, ties to even;
 *   'weight'     — quantize_row_q8_0_ref (and gguf-py), used to write model files: id = 1/d, ties away from
 *                  zero, so a converted model holds exactly the weights of llama.cpp's Q8_0 GGUF.
 */
export function quantizeQ8_0(x: Float32Array, flavour: 'activation' | 'weight' = 'activation'): QuantizedTensor {
  checkBlockable('q8_0', x.length);
  const qs = new Uint8Array(x.length);
  const d = new Uint16Array(x.length / QK);
  quantizeQ8_0Into(x, new Int8Array(qs.buffer), d, flavour);
  return { dtype: 'q8_0', qs, d };
}

/** quantizeQ8_0 written into q (x.length) and d (x.length / 32): x, q and d may be views (a heap row, a frame). */
export function quantizeQ8_0Into(x: Float32Array, q: Int8Array, d: Uint16Array, flavour: 'activation' | 'weight' = 'activation'): void {
  checkBlockable('q8_0', x.length);
  const nb = x.length / QK;
  const weight = flavour === 'weight';
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
    const dv = Math.fround(amax / 127);
    d[b] = f32ToF16(dv);
    const id = amax === 0 ? 0 : weight ? Math.fround(1 / dv) : Math.fround(127 / amax);
    for (let j = 0; j < QK; j++) {
      const v = Math.fround(x[b * QK + j] * id);
      q[b * QK + j] = weight ? Math.sign(v) * Math.floor(Math.abs(v) + 0.5) : roundEven(v);
    }
  }
}

/** q4_0 of a float vector: d = max/-8 where max is the signed value of largest magnitude, q = min(15, trunc(x/d + 8.5)). */
export function quantizeQ4_0(x: Float32Array): QuantizedTensor {
  checkBlockable('q4_0', x.length);
  const nb = x.length / QK;
  const qs = new Uint8Array(x.length / 2);
  const d = new Uint16Array(nb);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[b * QK + j];
      if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
    }
    const dv = Math.fround(max / -8);
    const id = dv !== 0 ? Math.fround(1 / dv) : 0;
    d[b] = f32ToF16(dv);
    for (let j = 0; j < QK / 2; j++) {
      const x0 = Math.fround(x[b * QK + j] * id);
      const x1 = Math.fround(x[b * QK + QK / 2 + j] * id);
      const q0 = Math.min(15, Math.trunc(Math.fround(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(x1 + 8.5)));
      qs[b * (QK / 2) + j] = q0 | (q1 << 4);
    }
  }
  return { dtype: 'q4_0', qs, d };
}

/** Quantize weights the way ggml writes them into model files. */
export function quantize(dtype: 'q8_0' | 'q4_0', x: Float32Array): QuantizedTensor {
  return dtype === 'q8_0' ? quantizeQ8_0(x, 'weight') : quantizeQ4_0(x);
}

export function dequantize(t: QuantizedTensor): Float32Array {
  const n = t.d.length * QK;
  const out = new Float32Array(n);
  if (t.dtype === 'q8_0') {
    const q = new Int8Array(t.qs.buffer, t.qs.byteOffset, t.qs.byteLength);
    for (let i = 0; i < n; i++) out[i] = q[i] * f16ToF32(t.d[(i / QK) | 0]);
  } else {
    for (let b = 0; b < t.d.length; b++) {
      const d = f16ToF32(t.d[b]);
      for (let j = 0; j < QK / 2; j++) {
        const byte = t.qs[b * (QK / 2) + j];
        out[b * QK + j] = ((byte & 0x0f) - 8) * d;
        out[b * QK + j + QK / 2] = ((byte >> 4) - 8) * d;
      }
    }
  }
  return out;
}

/** Serialise weights of `dtype` into shard bytes (see the layout above), quantized as ggml quantizes model files. */
export function encodeTensor(dtype: DType, values: Float32Array): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(values.slice().buffer);
  if (dtype === 'f16') {
    const h = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) h[i] = f32ToF16(values[i]);
    return new Uint8Array(h.buffer);
  }
  const t = quantize(dtype, values);
  const out = new Uint8Array(shardBytes(dtype, values.length));
  out.set(t.qs, 0);
  out.set(new Uint8Array(t.d.buffer), t.qs.length);
  return out;
}

/** Decode shard bytes of `n` elements back to floats (reference path: tools, tests, GGUF export). */
export function decodeTensor(dtype: DType, bytes: Uint8Array, n: number): Float32Array {
  const own = bytes.slice(0, shardBytes(dtype, n)); // aligned copy
  if (dtype === 'f32') return new Float32Array(own.buffer);
  if (dtype === 'f16') {
    const h = new Uint16Array(own.buffer);
    return Float32Array.from(h, f16ToF32);
  }
  const qb = quantBytes(dtype, n);
  return dequantize({ dtype, qs: own.subarray(0, qb), d: new Uint16Array(own.buffer, qb, n / QK) });
}

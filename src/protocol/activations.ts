// Activations on the wire: f32 -> the dtype a request carries (client side) and back to f32 (backend side).
// q8_0 is quantized exactly as the kernels quantize their input, so dequantize -> kernel requantize is the identity.
import type { DType } from '../format/quant';
import { f32ToF16, halfToFloatTable, QK, quantizeQ8_0 } from '../format/quant';
import type { ActDType, Activations } from './expert-wire';

/**
 * The activation dtype that keeps remote experts exact: q8_0 for quantized experts (the kernel would quantize
 * x to exactly these blocks), f32 for float experts.
 */
export function activationDTypeFor(expertDType: DType): ActDType {
  return expertDType === 'q8_0' || expertDType === 'q4_0' ? 'q8_0' : 'f32';
}

/** x (nTok, hidden) f32 -> wire activations of `dtype` (q8_0: ggml's activation quantization, per 32-block). */
export function encodeActivations(x: Float32Array, dtype: ActDType): Activations {
  if (dtype === 'f32') return { dtype, data: x };
  if (dtype === 'f16') {
    const data = new Uint16Array(x.length);
    for (let i = 0; i < x.length; i++) data[i] = f32ToF16(x[i]);
    return { dtype, data };
  }
  const q = quantizeQ8_0(x, 'activation');
  return { dtype, qs: new Int8Array(q.qs.buffer, q.qs.byteOffset, q.qs.length), d: q.d };
}

/** Wire activations -> f32 (q8_0: q * d, exact in f32 since 8 x 11 significant bits fit in 24). */
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

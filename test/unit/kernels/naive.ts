// Independent float64 definitions of the kernels, written from the math (dequantized weights, exact
// activations) rather than from the reference executor, so the reference itself is checked too.
import { QK, decodeTensor, dequantize, encodeTensor, f16ToF32, f32ToF16, quantizeQ8_0, roundF16, type DType } from '../../../src/format/quant';
import type { AttentionShape, RopeLayout } from '../../../src/kernels/types';

/** W (rows, cols) as the kernels see it after storage as `dtype`. */
export function storedWeights(dtype: DType, values: Float32Array): Float32Array {
  return decodeTensor(dtype, encodeTensor(dtype, values), values.length);
}

/** What a matmul of dtype `dtype` actually multiplies: q8_0-round-tripped rows, f16-rounded or exact input. */
export function effectiveInput(dtype: DType, x: Float32Array, cols: number): Float32Array {
  if (dtype === 'f32') return x;
  if (dtype === 'f16') return Float32Array.from(x, roundF16);
  const out = new Float32Array(x.length);
  for (let t = 0; t < x.length / cols; t++) out.set(dequantize(quantizeQ8_0(x.subarray(t * cols, (t + 1) * cols))), t * cols);
  return out;
}

/** Y (nTok, rows) = X (nTok, cols) @ W^T in float64, and mag = |X| @ |W|^T, the scale of rounding errors. */
export function matmulF64(w: Float32Array, x: Float32Array, rows: number, cols: number, nTok: number) {
  const y = new Float64Array(nTok * rows);
  const mag = new Float64Array(nTok * rows);
  for (let t = 0; t < nTok; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      let m = 0;
      for (let c = 0; c < cols; c++) {
        const p = w[r * cols + c] * x[t * cols + c];
        s += p;
        m += Math.abs(p);
      }
      y[t * rows + r] = s;
      mag[t * rows + r] = m;
    }
  }
  return { y, mag };
}

export const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * How far the input of a matmul of `dtype` may legitimately move when its f32 input h (nTok, n) is known
 * only to within tolH per element: an element within tolH of a rounding boundary (q8_0: x/d at
 * k + 1/2; f16: a midpoint between halves) may land one step either way, and a block whose f16 scale
 * amax/127 sits within reach of an f16 midpoint may change every quant by one ulp of the scale (2^-10).
 * Elsewhere re-rounding is deterministic. Returned per element of h; multiply by |W| for the output.
 */
export function reroundAllowance(dtype: DType, h: Float32Array, tolH: Float32Array, n: number, nTok: number): Float64Array {
  const out = new Float64Array(h.length);
  if (dtype === 'f32') return out;
  if (dtype === 'f16') {
    for (let i = 0; i < h.length; i++) {
      const bits = f32ToF16(h[i]) & 0x7fff; // magnitude bits; neighbours are bits -/+ 1
      const a = Math.abs(h[i]);
      const here = f16ToF32(bits);
      const below = bits > 0 ? f16ToF32(bits - 1) : -here;
      const above = f16ToF32(bits + 1);
      const dist = Math.min(Math.abs(a - (here + below) / 2), Math.abs(a - (here + above) / 2));
      if (dist <= 2 * tolH[i]) out[i] = above - here;
    }
    return out;
  }
  for (let t = 0; t < nTok; t++) {
    for (let b = 0; b < n / QK; b++) {
      const o = t * n + b * QK;
      let amax = 0;
      let tolAmax = 0;
      for (let j = 0; j < QK; j++) if (Math.abs(h[o + j]) >= amax) { amax = Math.abs(h[o + j]); tolAmax = tolH[o + j]; }
      if (amax === 0) continue;
      const d = amax / 127;
      const d16 = roundF16(d);
      const scaleMoves = Math.abs(Math.abs(d - d16) - (d16 * 2 ** -11)) <= (4 * tolAmax) / 127 + d * 2 ** -20;
      for (let j = 0; j < QK; j++) {
        const v = (h[o + j] * 127) / amax;
        const margin = ((2 * tolH[o + j] + (Math.abs(h[o + j]) * 2 * tolAmax) / amax) * 127) / amax;
        if (Math.abs(v - (Math.floor(v) + 0.5)) <= margin) out[o + j] += d16 * 1.001;
        if (scaleMoves) out[o + j] += Math.abs(h[o + j]) * 2 ** -10;
      }
    }
  }
  return out;
}

export function rmsNormF64(x: Float32Array, w: Float32Array, n: number, nTok: number, eps: number): Float64Array {
  const out = new Float64Array(nTok * n);
  for (let t = 0; t < nTok; t++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[t * n + i] ** 2;
    const s = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[t * n + i] = x[t * n + i] * s * w[i];
  }
  return out;
}

/** Index pairs rotated together: neox (i, i + rot/2), interleaved (2i, 2i+1), for i < rot/2. */
export function ropePair(layout: RopeLayout, i: number, rotDims: number): [number, number] {
  return layout === 'neox' ? [i, i + rotDims / 2] : [2 * i, 2 * i + 1];
}

export function ropeF64(x: Float32Array, nTok: number, nHeads: number, headDim: number, rotDims: number, pos0: number, base: number, layout: RopeLayout): Float64Array {
  const out = Float64Array.from(x);
  for (let t = 0; t < nTok; t++) {
    for (let h = 0; h < nHeads; h++) {
      const o = (t * nHeads + h) * headDim;
      for (let i = 0; i < rotDims / 2; i++) {
        const theta = (pos0 + t) * base ** ((-2 * i) / rotDims);
        const [a, b] = ropePair(layout, i, rotDims);
        const xa = x[o + a];
        const xb = x[o + b];
        out[o + a] = xa * Math.cos(theta) - xb * Math.sin(theta);
        out[o + b] = xa * Math.sin(theta) + xb * Math.cos(theta);
      }
    }
  }
  return out;
}

/** Causal attention in float64; also returns the largest |score| per query row (error scale of exp). */
export function attentionF64(q: Float32Array, k: Float32Array, v: Float32Array, nTok: number, pos0: number, s: AttentionShape) {
  const { nHead, nKvHead, headDim, scale } = s;
  const out = new Float64Array(nTok * nHead * headDim);
  let maxScore = 0;
  for (let t = 0; t < nTok; t++) {
    for (let h = 0; h < nHead; h++) {
      const kvh = Math.floor(h / (nHead / nKvHead));
      const qo = (t * nHead + h) * headDim;
      const scores: number[] = [];
      for (let j = 0; j <= pos0 + t; j++) {
        let d = 0;
        for (let e = 0; e < headDim; e++) d += q[qo + e] * k[(j * nKvHead + kvh) * headDim + e];
        scores.push(d * scale);
        maxScore = Math.max(maxScore, Math.abs(d * scale));
      }
      const m = Math.max(...scores);
      const p = scores.map((sc) => Math.exp(sc - m));
      const z = p.reduce((a, b) => a + b, 0);
      for (let j = 0; j < p.length; j++) {
        for (let e = 0; e < headDim; e++) out[qo + e] += (p[j] / z) * v[(j * nKvHead + kvh) * headDim + e];
      }
    }
  }
  return { out, maxScore };
}

export function softmaxF64(x: Float32Array, n: number, rows: number): Float64Array {
  const out = new Float64Array(n * rows);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(x.subarray(r * n, (r + 1) * n));
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const z = e.reduce((a, b) => a + b, 0);
    for (let i = 0; i < n; i++) out[r * n + i] = e[i] / z;
  }
  return out;
}

export function topKF64(x: Float32Array, k: number): { idx: number[]; val: number[] } {
  const order = Array.from(x.keys()).sort((a, b) => x[b] - x[a] || a - b);
  const idx = order.slice(0, k);
  return { idx, val: idx.map((i) => x[i]) };
}


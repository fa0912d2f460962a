// The TypeScript reference executor: the readable definition of every kernel, ggml-compatible in value.
// Slow on purpose; the conformance suite holds every other executor (WASM, WebGPU) to it.
import { QK, f16ToF32, f32ToF16, isQuantized, quantBytes, quantizeQ4_0, quantizeQ8_0, roundF16 } from '../format/quant';
import { asKvMat, checkKvHeads } from './kv-rows';
import { Heap } from './heap';
import { ffnOnDequantized, q8Views } from './q8-input';
import type { AttentionShape, Kernels, KvRows, Mat, Ptr, RopeLayout } from './types';

const fr = Math.fround;
const PAGE = 65536;

export interface ReferenceOptions {
  /** Upper bound of the heap in 64 KiB pages (default 65536 = 4 GiB; Node only reserves it). */
  maximumPages?: number;
}

export function createReferenceKernels(opts: ReferenceOptions = {}): Kernels {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: opts.maximumPages ?? PAGE });
  const heap = new Heap(memory, 1024);
  const buf = () => memory.buffer; // re-read after every alloc: grow() detaches the old buffer

  /** Dot of one q8_0-quantized activation row with weight row r: sum over blocks of isum * (dw * dx), in f32. */
  function quantRowDot(w: Mat, r: number, qx: Int8Array, dx: Float32Array): number {
    const nb = w.cols / QK;
    const scales = new Float32Array(buf(), w.scales + r * nb * 4, nb);
    let acc = 0;
    if (w.dtype === 'q8_0') {
      const qw = new Int8Array(buf(), w.data + r * w.cols, w.cols);
      for (let b = 0; b < nb; b++) {
        let isum = 0;
        for (let j = 0; j < QK; j++) isum += qw[b * QK + j] * qx[b * QK + j];
        acc = fr(acc + fr(isum * fr(scales[b] * dx[b])));
      }
    } else {
      // q4_0: byte j of a block holds element j (low nibble) and j+16 (high nibble); value = nibble - 8
      const qw = new Uint8Array(buf(), w.data + (r * w.cols) / 2, w.cols / 2);
      for (let b = 0; b < nb; b++) {
        let isum = 0;
        for (let j = 0; j < QK / 2; j++) {
          const byte = qw[b * (QK / 2) + j];
          isum += ((byte & 0x0f) - 8) * qx[b * QK + j] + ((byte >> 4) - 8) * qx[b * QK + j + QK / 2];
        }
        acc = fr(acc + fr(isum * fr(scales[b] * dx[b])));
      }
    }
    return acc;
  }

  // Y (nTok, rows) = X (nTok, cols) @ W^T for X given as q8_0 blocks: qx (nTok, cols) int8, dx (nTok, cols/32)
  function quantMatmul(w: Mat, qx: Int8Array, dx: Float32Array, y: Ptr, nTok: number): void {
    const { rows, cols } = w;
    const nb = cols / QK;
    const Y = new Float32Array(nTok * rows);
    for (let t = 0; t < nTok; t++) {
      const q = qx.subarray(t * cols, (t + 1) * cols);
      const d = dx.subarray(t * nb, (t + 1) * nb);
      for (let r = 0; r < rows; r++) Y[t * rows + r] = quantRowDot(w, r, q, d);
    }
    new Float32Array(buf(), y, nTok * rows).set(Y);
  }

  // Y (nTok, rows) = X (nTok, cols) @ W^T
  function matmul(w: Mat, x: Ptr, y: Ptr, nTok: number): void {
    const { rows, cols } = w;
    const X = new Float32Array(buf(), x, nTok * cols).slice(); // own copy: y may overlap x
    if (isQuantized(w.dtype)) {
      const q = quantizeQ8_0(X); // per 32-block, so row by row: no block straddles two tokens
      return quantMatmul(w, new Int8Array(q.qs.buffer), Float32Array.from(q.d, f16ToF32), y, nTok);
    }
    const Y = new Float32Array(nTok * rows);
    for (let t = 0; t < nTok; t++) {
      const xt = X.subarray(t * cols, (t + 1) * cols);
      if (w.dtype === 'f16') {
        const xh = Float64Array.from(xt, roundF16);
        const W = new Uint16Array(buf(), w.data, rows * cols);
        for (let r = 0; r < rows; r++) {
          let s = 0; // f16*f16 products are exact in f32; the sum is in double as ggml's generic vec_dot_f16
          for (let c = 0; c < cols; c++) s += f16ToF32(W[r * cols + c]) * xh[c];
          Y[t * rows + r] = s;
        }
      } else {
        const W = new Float32Array(buf(), w.data, rows * cols);
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let c = 0; c < cols; c++) s += W[r * cols + c] * xt[c];
          Y[t * rows + r] = s;
        }
      }
    }
    new Float32Array(buf(), y, nTok * rows).set(Y);
  }

  // out (cols) = W[row, :]
  function getRow(w: Mat, row: number, out: Ptr): void {
    const { cols } = w;
    const o = new Float32Array(buf(), out, cols);
    if (w.dtype === 'f32') {
      o.set(new Float32Array(buf(), w.data + row * cols * 4, cols));
    } else if (w.dtype === 'f16') {
      const h = new Uint16Array(buf(), w.data + row * cols * 2, cols);
      for (let c = 0; c < cols; c++) o[c] = f16ToF32(h[c]);
    } else {
      const nb = cols / QK;
      const d = new Float32Array(buf(), w.scales + row * nb * 4, nb);
      if (w.dtype === 'q8_0') {
        const q = new Int8Array(buf(), w.data + row * cols, cols);
        for (let c = 0; c < cols; c++) o[c] = q[c] * d[(c / QK) | 0];
      } else {
        const q = new Uint8Array(buf(), w.data + (row * cols) / 2, cols / 2);
        for (let b = 0; b < nb; b++) {
          for (let j = 0; j < QK / 2; j++) {
            const byte = q[b * (QK / 2) + j];
            o[b * QK + j] = ((byte & 0x0f) - 8) * d[b];
            o[b * QK + j + QK / 2] = ((byte >> 4) - 8) * d[b];
          }
        }
      }
    }
  }

  // Y (nTok, H) = down(silu(gate X) * up X); the hidden (nTok, I) goes through matmul, so a quantized
  // down re-quantizes it to q8_0 exactly as a separate ggml mul_mat would.
  function ffnSwiglu(gate: Mat, up: Mat, down: Mat, x: Ptr, y: Ptr, nTok: number): void {
    ffn(gate, down, y, nTok, (g, u) => {
      matmul(gate, x, g, nTok);
      matmul(up, x, u, nTok);
    });
  }

  // The same with X given as q8_0 blocks: quantized gate/up dot them as they are (matmul would quantize X to them).
  function ffnSwigluQ8(gate: Mat, up: Mat, down: Mat, xq: Ptr, xd: Ptr, y: Ptr, nTok: number): void {
    if (!isQuantized(gate.dtype) || !isQuantized(up.dtype)) return ffnOnDequantized(kernels, gate, up, down, xq, xd, y, nTok);
    const { qs, d } = q8Views(heap, xq, xd, nTok * gate.cols);
    const qx = qs.slice();
    const dx = Float32Array.from(d, f16ToF32);
    ffn(gate, down, y, nTok, (g, u) => {
      quantMatmul(gate, qx, dx, g, nTok);
      quantMatmul(up, qx, dx, u, nTok);
    });
  }

  // gateUp fills G and U (nTok, I); then G <- silu(G) * U and Y = down G.
  function ffn(gate: Mat, down: Mat, y: Ptr, nTok: number, gateUp: (g: Ptr, u: Ptr) => void): void {
    const I = gate.rows;
    const g = heap.alloc(nTok * I * 4);
    const u = heap.alloc(nTok * I * 4);
    try {
      gateUp(g, u);
      const G = new Float32Array(buf(), g, nTok * I);
      const U = new Float32Array(buf(), u, nTok * I);
      for (let i = 0; i < nTok * I; i++) G[i] = fr(silu(G[i]) * U[i]);
      matmul(down, g, y, nTok);
    } finally {
      heap.release(u);
      heap.release(g);
    }
  }

  // out (nTok, n) = x * (1/sqrt(mean(x^2) + eps)) * w, as ggml's rms_norm followed by mul
  function rmsNorm(x: Ptr, w: Ptr, out: Ptr, n: number, nTok: number, eps: number): void {
    const X = new Float32Array(buf(), x, nTok * n);
    const W = new Float32Array(buf(), w, n);
    const O = new Float32Array(buf(), out, nTok * n);
    for (let t = 0; t < nTok; t++) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += X[t * n + i] * X[t * n + i];
      const scale = fr(1 / fr(Math.sqrt(fr(fr(sum / n) + fr(eps)))));
      for (let i = 0; i < n; i++) O[t * n + i] = fr(fr(X[t * n + i] * scale) * W[i]);
    }
  }

  // x (nTok, nHeads*headDim) in place; pair (a, b) of head dim i rotates by theta_i = pos * invFreq_i
  function rope(x: Ptr, nTok: number, nHeads: number, headDim: number, rotDims: number, pos0: number, base: number, layout: RopeLayout): void {
    const X = new Float32Array(buf(), x, nTok * nHeads * headDim);
    const half = rotDims / 2;
    // HF: inv_freq = 1 / base^(arange(0, rot, 2) / rot), all in float32
    const invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) invFreq[i] = fr(1 / fr(Math.pow(base, fr((2 * i) / rotDims))));
    for (let t = 0; t < nTok; t++) {
      const pos = pos0 + t;
      for (let h = 0; h < nHeads; h++) {
        const o = (t * nHeads + h) * headDim;
        for (let i = 0; i < half; i++) {
          const theta = fr(pos * invFreq[i]);
          const c = fr(Math.cos(theta));
          const s = fr(Math.sin(theta));
          const ia = layout === 'neox' ? o + i : o + 2 * i;
          const ib = layout === 'neox' ? o + i + half : o + 2 * i + 1;
          const a = X[ia];
          const b = X[ib];
          X[ia] = fr(fr(a * c) - fr(b * s));
          X[ib] = fr(fr(a * s) + fr(b * c));
        }
      }
    }
  }

  // out[t, h] = sum_j softmax_j(scale * q[t,h] . k[j, kvh]) v[j, kvh] over j <= pos0 + t
  function attention(q: Ptr, kCache: KvRows, vCache: KvRows, out: Ptr, nTok: number, pos0: number, shape: AttentionShape): void {
    const { nHead, nKvHead, headDim, scale } = shape;
    const group = nHead / nKvHead;
    const qStride = nHead * headDim;
    const kvStride = nKvHead * headDim;
    const nPos = pos0 + nTok;
    const kMat = asKvMat(kCache, nPos, kvStride);
    const vMat = asKvMat(vCache, nPos, kvStride);
    checkKvHeads(kMat, vMat, headDim);
    const Q = new Float32Array(buf(), q, nTok * qStride).slice(); // out may alias q
    const V = dequantRows(vMat, nPos); // exact: every cache dtype widens to f32 without rounding
    const keyDot = kMat.dtype === 'f32' ? null : keyDotOf(kMat, nPos, kvStride);
    const K = keyDot ? null : new Float32Array(buf(), kMat.data, nPos * kvStride);
    const O = new Float32Array(buf(), out, nTok * qStride);
    const p = new Float64Array(nPos);
    const acc = new Float64Array(headDim);
    for (let t = 0; t < nTok; t++) {
      const last = pos0 + t;
      for (let h = 0; h < nHead; h++) {
        const qo = t * qStride + h * headDim;
        const kvo = Math.floor(h / group) * headDim;
        const dot = keyDot?.(Q.subarray(qo, qo + headDim), kvo);
        let max = -Infinity;
        for (let j = 0; j <= last; j++) {
          let s = 0;
          if (dot) s = dot(j);
          else for (let d = 0; d < headDim; d++) s += Q[qo + d] * K![j * kvStride + kvo + d];
          p[j] = fr(fr(s) * scale);
          if (p[j] > max) max = p[j];
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) { p[j] = Math.exp(p[j] - max); sum += p[j]; }
        acc.fill(0);
        for (let j = 0; j <= last; j++) {
          const pj = p[j] / sum;
          for (let d = 0; d < headDim; d++) acc[d] += pj * V[j * kvStride + kvo + d];
        }
        for (let d = 0; d < headDim; d++) O[qo + d] = acc[d];
      }
    }
  }

  /** Rows 0..nPos-1 of a cache as f32 (a copy for f32: later stores must not show through). */
  function dequantRows(m: Mat, nPos: number): Float32Array {
    const out = new Float32Array(nPos * m.cols);
    const row = heap.alloc(m.cols * 4);
    try {
      for (let j = 0; j < nPos; j++) {
        getRow(m, j, row);
        out.set(new Float32Array(buf(), row, m.cols), j * m.cols);
      }
    } finally {
      heap.release(row);
    }
    return out;
  }

  /**
   * For a non-f32 K cache: (query head, its kv head offset) -> (position -> q . k) with q converted to K's dot
   * input, as ggml's flash attention does (f16: q rounded to f16, products summed in double as vec_dot_f16;
   * q8_0/q4_0: q quantized to q8_0, the integer block dots of quantRowDot).
   */
  function keyDotOf(k: Mat, nPos: number, kvStride: number): (qh: Float32Array, kvo: number) => (j: number) => number {
    if (k.dtype === 'f16') {
      const Kh = new Uint16Array(buf(), k.data, nPos * kvStride).slice();
      return (qh, kvo) => {
        const qr = Float64Array.from(qh, roundF16);
        return (j) => {
          let s = 0;
          for (let d = 0; d < qr.length; d++) s += f16ToF32(Kh[j * kvStride + kvo + d]) * qr[d];
          return s;
        };
      };
    }
    return (qh, kvo) => {
      const qq = quantizeQ8_0(qh);
      const qx = new Int8Array(qq.qs.buffer);
      const dx = Float32Array.from(qq.d, f16ToF32);
      // a head of row j is `headDim` columns of a (nPos * nKvHead, headDim) matrix: row j * nKvHead + kvo / headDim
      const head: Mat = { dtype: k.dtype, rows: nPos * (kvStride / qh.length), cols: qh.length, data: k.data, scales: k.scales };
      return (j) => quantRowDot(head, (j * kvStride + kvo) / qh.length, qx, dx);
    };
  }

  // rows row0.. of dst = x (nRows, dst.cols), stored as dst.dtype the way ggml writes its KV cache
  function storeRows(x: Ptr, dst: Mat, row0: number, nRows: number): void {
    const { cols } = dst;
    if (row0 < 0 || row0 + nRows > dst.rows) throw new RangeError(`storeRows: rows ${row0}..${row0 + nRows - 1} outside 0..${dst.rows - 1}`);
    const X = new Float32Array(buf(), x, nRows * cols).slice();
    const n = nRows * cols;
    const at = row0 * cols;
    if (dst.dtype === 'f32') return new Float32Array(buf(), dst.data + at * 4, n).set(X);
    if (dst.dtype === 'f16') {
      const h = new Uint16Array(buf(), dst.data + at * 2, n);
      for (let i = 0; i < n; i++) h[i] = f32ToF16(X[i]);
      return;
    }
    const q = dst.dtype === 'q8_0' ? quantizeQ8_0(X) : quantizeQ4_0(X);
    new Uint8Array(buf(), dst.data + quantBytes(dst.dtype, at), q.qs.length).set(q.qs);
    new Float32Array(buf(), dst.scales + (at / QK) * 4, q.d.length).set(Float32Array.from(q.d, f16ToF32));
  }

  function softmax(x: Ptr, n: number, rows: number): void {
    const X = new Float32Array(buf(), x, n * rows);
    for (let r = 0; r < rows; r++) {
      const row = X.subarray(r * n, (r + 1) * n);
      let max = -Infinity;
      for (let i = 0; i < n; i++) if (row[i] > max) max = row[i];
      let sum = 0;
      for (let i = 0; i < n; i++) { row[i] = Math.exp(row[i] - max); sum += row[i]; }
      for (let i = 0; i < n; i++) row[i] = row[i] / sum;
    }
  }

  function topK(x: Ptr, n: number, k: number, outIdx: Ptr, outVal: Ptr): void {
    const X = new Float32Array(buf(), x, n);
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => (X[b] - X[a]) || (a - b)); // descending value, then ascending index
    const I = new Int32Array(buf(), outIdx, k);
    const V = new Float32Array(buf(), outVal, k);
    for (let i = 0; i < k; i++) { I[i] = order[i]; V[i] = X[order[i]]; }
  }

  function addScaled(a: Ptr, b: Ptr, s: number, n: number): void {
    const A = new Float32Array(buf(), a, n);
    const B = new Float32Array(buf(), b, n);
    const sf = fr(s);
    for (let i = 0; i < n; i++) A[i] = fr(A[i] + fr(sf * B[i]));
  }

  const kernels: Kernels = { name: 'ts-ref', heap, matmul, getRow, ffnSwiglu, ffnSwigluQ8, rmsNorm, rope, attention, storeRows, softmax, topK, addScaled };
  return kernels;
}

function silu(v: number): number {
  return fr(v / fr(1 + fr(Math.exp(-v))));
}

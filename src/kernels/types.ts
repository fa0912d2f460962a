// The kernel seam: one interface that every in-heap executor implements (TS reference, WASM scalar/SIMD/relaxed).
// Kernels are pure functions over flat buffers in one heap; the engine only composes them. WebGPU is not a Kernels
// executor: it is a second seam, behind the GPU backend's ExpertDevice (gpu-backend/devices/device.ts), held to
// the same conformance cases by test/unit/kernels/webgpu.test.ts.
import type { DType } from '../format/quant';
import type { Heap, Ptr } from './heap';

export type { Ptr };

/**
 * A weight matrix resident in the heap: W (rows, cols), row-major, y = W x.
 * `data` points at the values (f32/f16) or quants (q8_0/q4_0); `scales` at rows*cols/32 float32 scales
 * (0 for float formats). Layouts are those of src/format/quant.ts with scales widened to f32.
 */
export interface Mat {
  readonly dtype: DType;
  readonly rows: number;
  readonly cols: number;
  readonly data: Ptr;
  readonly scales: Ptr;
  /**
   * Set by `Kernels.packWeights` once it has rearranged the quants (and maybe the scales) in place into that
   * executor's faster layout (the same bytes moved, one way; same results); only the executor that packed a matrix
   * may read it.
   */
  packed?: boolean;
}

/**
 * One layer's K or V cache as attention reads it: `rows` positions of `cols` = nKvHead*headDim, stored as `dtype`
 * in quant.ts's kernel layout (q8_0/q4_0: quants at `data`, one f32 scale per 32-block at `scales`). A bare
 * pointer is f32 rows. Quantized caches need headDim % 32 == 0, so no block straddles two heads (as in ggml).
 */
export type KvRows = Ptr | Mat;

export type RopeLayout = 'neox' | 'interleaved'; // neox: rotate halves (HF rotate_half); interleaved: adjacent pairs (GPT-J, llama.cpp NORM)

export interface AttentionShape {
  nHead: number;
  nKvHead: number; // GQA: query head h reads kv head floor(h / (nHead / nKvHead))
  headDim: number;
  scale: number; // usually 1/sqrt(headDim)
}

/**
 * All shapes are in elements; all activations are float32 and row-major: a batch of `nTok` vectors of
 * length n is a (nTok, n) matrix. Quantized matmuls quantize their f32 input per 32-block exactly as ggml
 * does (q8_0, d = f16(amax/127)) and use integer dot products; f16 matmuls round the input to f16 (as
 * ggml's F16 vec_dot does); f32 matmuls are plain float dot products.
 */
export interface Kernels {
  readonly name: string;
  /** wasm-relaxed only: its integer dots accumulate with fused dot-adds (src/kernels/fused-dot.ts) */
  readonly fusedDot?: boolean;
  /** wasm-relaxed on fused dot-adds that read bytes unsigned: packed q4_0's high nibbles are multiplied in place */
  readonly unsignedDots?: boolean;
  /** The heap every pointer refers to; executors take their own scratch from it too. */
  readonly heap: Heap;

  /** Y (nTok, w.rows) = X (nTok, w.cols) @ W^T. nTok = 1 is mat-vec (decode), > 1 is mat-mat (prefill). */
  matmul(w: Mat, x: Ptr, y: Ptr, nTok: number): void;
  /**
   * Called once on each weight matrix right after its bytes are in the heap: rearranges them in place into the
   * layout this executor reads fastest and marks it `packed` (nothing to do: leaves it as it is). Results do not
   * change. Absent: the heap layout is quant.ts's as it stands. Never for a KV cache (storeRows writes quant.ts's).
   */
  packWeights?(m: Mat): void;
  /** out (w.cols) = row `row` of W, dequantized (embedding lookup). */
  getRow(w: Mat, row: number, out: Ptr): void;
  /** Fused SwiGLU expert FFN: Y (nTok, H) = down(silu(gate X) * up X); gate/up (I, H), down (H, I). */
  ffnSwiglu(gate: Mat, up: Mat, down: Mat, x: Ptr, y: Ptr, nTok: number): void;
  /**
   * ffnSwiglu on q8_0 activations as they arrive from the Worker: X = xq * xd per 32-block, xq (nTok, H) int8 and
   * xd (nTok, H/32) f16 scales (src/format/quant.ts's q8_0 layout). Quantized gate/up take the blocks as their
   * input quantization, with no dequantize -> requantize round; float gate/up get the dequantized X. Bit for bit
   * ffnSwiglu on the dequantized X whenever the blocks are ggml's activation quantization of it (what the Worker sends).
   */
  ffnSwigluQ8(gate: Mat, up: Mat, down: Mat, xq: Ptr, xd: Ptr, y: Ptr, nTok: number): void;
  /** out (nTok, n) = x / sqrt(mean(x^2) + eps) * w, per row; sum of squares in double as ggml does; out may equal x. */
  rmsNorm(x: Ptr, w: Ptr, out: Ptr, n: number, nTok: number, eps: number): void;
  /**
   * In-place rotary embedding of x (nTok, nHeads * headDim); token t is at position pos0 + t.
   * Rotates the first `rotDims` dims of each head (rotDims <= headDim, even); theta_i = pos * base^(-2i/rotDims).
   */
  rope(x: Ptr, nTok: number, nHeads: number, headDim: number, rotDims: number, pos0: number, base: number, layout: RopeLayout): void;
  /**
   * Causal attention for nTok queries at positions pos0..pos0+nTok-1 over a KV cache holding positions
   * 0..pos0+nTok-1. q, out: (nTok, nHead*headDim); kCache, vCache: (maxCtx, nKvHead*headDim), any KvRows dtype.
   * As ggml's CPU flash attention: each query head is converted to the K dtype's dot input (f16: rounded to f16;
   * q8_0/q4_0: quantized to q8_0 per 32-block) and dotted like a matmul row; V rows are dequantized exactly.
   */
  attention(q: Ptr, kCache: KvRows, vCache: KvRows, out: Ptr, nTok: number, pos0: number, shape: AttentionShape): void;
  /**
   * Rows row0..row0+nRows-1 of `dst` (a KV cache) = x (nRows, dst.cols) f32, converted as ggml writes its cache:
   * f16 round to nearest even, q8_0 as quantizeQ8_0 'activation' (ggml's CPU from_float), q4_0 as quantizeQ4_0.
   */
  storeRows(x: Ptr, dst: Mat, row0: number, nRows: number): void;
  /** In-place softmax over each of `rows` rows of n floats (max-subtracted). */
  softmax(x: Ptr, n: number, rows: number): void;
  /** Indices and values of the k largest of x (n floats), in descending order (ties: lower index first). */
  topK(x: Ptr, n: number, k: number, outIdx: Ptr, outVal: Ptr): void;
  /** a (n) += s * b (n). */
  addScaled(a: Ptr, b: Ptr, s: number, n: number): void;
}

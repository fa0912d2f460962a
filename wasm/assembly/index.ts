// Entry of kernels-simd.wasm and kernels-relaxed.wasm: the exported ABI. Every pointer is a byte offset into the
// imported memory (owned by JS, managed by src/kernels/heap.ts); every SIMD kernel `name` has its scalar twin
// `name_scalar` in the same module. dtype codes: 0 f32, 1 f16, 2 q8_0, 3 q4_0, 4 q4_0x4 (q4_0 repacked, dot-q4x4.ts), 5 q8_0x4 (dot-q8x4.ts).
import { QK as QK_, Q8_0_BLOCK_QUANT_BYTES as Q8B, Q4_0_BLOCK_QUANT_BYTES as Q4B, SCALE_BYTES as SB, RELAXED as REL } from './common';
import { DT_F32 as F32, DT_F16 as F16, DT_Q8_0 as Q8, DT_Q4_0 as Q4, DT_Q4_0X4 as Q4X4, DT_Q8_0X4 as Q8X4 } from './common';
import { setFusedDot } from './common';
import { repackQ4x4, repackScratchQ4x4 } from './dot-q4x4';
import { repackQ8x4 } from './dot-q8x4';
import { expF32, expF32x4 } from './exp';
import { matmul, matmulScratch, ffnSwiglu, ffnSwigluQ8, ffnScratch } from './matmul';
import { attention as attn, attentionScratch, attentionKv, attentionKvScratch } from './attention';
import { storeRows } from './kv-store';
import { getRow, getRowQ4x4, getRowQ8x4, rmsNorm, rope as ropeImpl, softmax as softmaxImpl, topK, addScaled } from './elementwise';

export const QK: i32 = QK_;
export const Q8_0_BLOCK_QUANT_BYTES: i32 = Q8B;
export const Q4_0_BLOCK_QUANT_BYTES: i32 = Q4B;
export const SCALE_BYTES: i32 = SB;
export const IS_RELAXED: i32 = REL ? 1 : 0;
// the dtype codes the kernels switch on, checked against src/kernels/wasm.ts's DTYPE_CODE at load
export const DT_F32: i32 = F32;
export const DT_F16: i32 = F16;
export const DT_Q8_0: i32 = Q8;
export const DT_Q4_0: i32 = Q4;
export const DT_Q4_0X4: i32 = Q4X4;
export const DT_Q8_0X4: i32 = Q8X4;

/**
 * Relaxed build: the integer dots' path: i16 + widening (0), fused (1), or fused reading bytes unsigned (2: q4_0's
 * high nibbles in place, q8_0's weights stored + 128: set it before weights are packed); see FUSED_DOT and UNSIGNED_DOTS in common.ts.
 */
export function set_fused_dot(mode: i32): void {
  setFusedDot(mode != 0, mode == 2);
}

/**
 * Lane 0 of i32x4.relaxed_dot_i8x16_i7x16_add_s(splat(a), splat(b), 0), relaxed build only (0 otherwise). With b's
 * high bit set the result is the engine's choice, which tells how it lowers the op (src/kernels/fused-dot.ts).
 */
export function fused_dot_probe(a: i32, b: i32): i32 {
  if (REL) return i32x4.extract_lane(i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.splat(<i8>a), i8x16.splat(<i8>b), i32x4.splat(0)), 0);
  return 0;
}

/** End of this module's static data: the JS heap must start at or above it. */
export function heap_base(): usize {
  return __heap_base;
}

// ---- scratch sizes (bytes) the caller provides ----
export function matmul_scratch(dt: i32, cols: i32, nTok: i32): i32 { return matmulScratch(dt, cols, nTok); }
export function ffn_scratch(dtGateUp: i32, dtDown: i32, hidden: i32, inter: i32, nTok: i32): i32 { return ffnScratch(dtGateUp, dtDown, hidden, inter, nTok); }
export function attention_scratch(nCtx: i32, nHead: i32): i32 { return attentionScratch(nCtx, nHead); }
export function attention_kv_scratch(nCtx: i32, headDim: i32, group: i32, nTok: i32): i32 { return attentionKvScratch(nCtx, headDim, group, nTok); }

// ---- matmul: Y (nTok, rows) = X (nTok, cols) @ W^T; scratch >= matmul_scratch(dt, cols, nTok) ----
export function matmul_f32(w: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(0, w, 0, rows, cols, x, y, nTok, scratch, true); }
export function matmul_f32_scalar(w: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(0, w, 0, rows, cols, x, y, nTok, scratch, false); }
export function matmul_f16(w: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(1, w, 0, rows, cols, x, y, nTok, scratch, true); }
export function matmul_f16_scalar(w: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(1, w, 0, rows, cols, x, y, nTok, scratch, false); }
export function matmul_q8_0(wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(2, wq, ws, rows, cols, x, y, nTok, scratch, true); }
export function matmul_q8_0_scalar(wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(2, wq, ws, rows, cols, x, y, nTok, scratch, false); }
export function matmul_q4_0(wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(3, wq, ws, rows, cols, x, y, nTok, scratch, true); }
export function matmul_q4_0_scalar(wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(3, wq, ws, rows, cols, x, y, nTok, scratch, false); }

export function matmul_q4_0x4(wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(4, wq, ws, rows, cols, x, y, nTok, scratch, true); }
export function matmul_q4_0x4_scalar(wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(4, wq, ws, rows, cols, x, y, nTok, scratch, false); }
/** In place, rows x cols q4_0 quants and their f32 scales from ggml's layout to q4_0x4; scratch >= repack_q4_0x4_scratch(cols). */
export function repack_q4_0x4(wq: usize, ws: usize, rows: i32, cols: i32, scratch: usize): void { repackQ4x4(wq, ws, rows, cols, scratch); }
export function repack_q4_0x4_scratch(cols: i32): i32 { return repackScratchQ4x4(cols); }
export function matmul_q8_0x4(wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(Q8X4, wq, ws, rows, cols, x, y, nTok, scratch, true); }
export function matmul_q8_0x4_scalar(wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize): void { matmul(Q8X4, wq, ws, rows, cols, x, y, nTok, scratch, false); }
/** In place, rows x cols q8_0 quants from ggml's layout to q8_0x4 (their scales stay as they are). */
export function repack_q8_0x4(wq: usize, rows: i32, cols: i32): void { repackQ8x4(wq, rows, cols); }

// ---- fused SwiGLU FFN: Y (nTok, hidden) = down(silu(gate X) * up X); gate and up share one dtype ----
export function ffn_swiglu(dtGU: i32, gq: usize, gs: usize, uq: usize, us: usize, dtD: i32, dq: usize, ds: usize,
  hidden: i32, inter: i32, x: usize, y: usize, nTok: i32, scratch: usize): void {
  ffnSwiglu(dtGU, gq, gs, uq, us, dtD, dq, ds, hidden, inter, x, y, nTok, scratch, true);
}
export function ffn_swiglu_scalar(dtGU: i32, gq: usize, gs: usize, uq: usize, us: usize, dtD: i32, dq: usize, ds: usize,
  hidden: i32, inter: i32, x: usize, y: usize, nTok: i32, scratch: usize): void {
  ffnSwiglu(dtGU, gq, gs, uq, us, dtD, dq, ds, hidden, inter, x, y, nTok, scratch, false);
}

// ---- the same FFN on q8_0 activations as they arrive (xq (nTok, hidden) i8, xd (nTok, hidden/32) f16); dtGU q8_0/q4_0 ----
export function ffn_swiglu_q8(dtGU: i32, gq: usize, gs: usize, uq: usize, us: usize, dtD: i32, dq: usize, ds: usize,
  hidden: i32, inter: i32, xq: usize, xd: usize, y: usize, nTok: i32, scratch: usize): void {
  ffnSwigluQ8(dtGU, gq, gs, uq, us, dtD, dq, ds, hidden, inter, xq, xd, y, nTok, scratch, true);
}
export function ffn_swiglu_q8_scalar(dtGU: i32, gq: usize, gs: usize, uq: usize, us: usize, dtD: i32, dq: usize, ds: usize,
  hidden: i32, inter: i32, xq: usize, xd: usize, y: usize, nTok: i32, scratch: usize): void {
  ffnSwigluQ8(dtGU, gq, gs, uq, us, dtD, dq, ds, hidden, inter, xq, xd, y, nTok, scratch, false);
}

// ---- attention; scratch >= attention_scratch(pos0 + nTok, nHead) ----
export function attention(q: usize, k: usize, v: usize, out: usize, nTok: i32, pos0: i32, nHead: i32, nKvHead: i32, headDim: i32, scale: f32, scratch: usize): void {
  attn(q, k, v, out, nTok, pos0, nHead, nKvHead, headDim, scale, scratch, true);
}
export function attention_scalar(q: usize, k: usize, v: usize, out: usize, nTok: i32, pos0: i32, nHead: i32, nKvHead: i32, headDim: i32, scale: f32, scratch: usize): void {
  attn(q, k, v, out, nTok, pos0, nHead, nKvHead, headDim, scale, scratch, false);
}

// ---- attention over a KV cache of dtypes dtK / dtV (quants k / v, f32 scales ks / vs); scratch >= attention_kv_scratch ----
export function attention_kv(q: usize, dtK: i32, k: usize, ks: usize, dtV: i32, v: usize, vs: usize, out: usize, nTok: i32, pos0: i32,
  nHead: i32, nKvHead: i32, headDim: i32, scale: f32, scratch: usize): void {
  attentionKv(q, dtK, k, ks, dtV, v, vs, out, nTok, pos0, nHead, nKvHead, headDim, scale, scratch, true);
}
export function attention_kv_scalar(q: usize, dtK: i32, k: usize, ks: usize, dtV: i32, v: usize, vs: usize, out: usize, nTok: i32, pos0: i32,
  nHead: i32, nKvHead: i32, headDim: i32, scale: f32, scratch: usize): void {
  attentionKv(q, dtK, k, ks, dtV, v, vs, out, nTok, pos0, nHead, nKvHead, headDim, scale, scratch, false);
}

// ---- single-version O(n) kernels ----
/** KV cache rows row0..row0+nRows-1 (dtype dt, quants data, f32 scales) = x (nRows, cols) f32, as ggml writes its cache. */
export function store_rows(dt: i32, x: usize, data: usize, scales: usize, cols: i32, row0: i32, nRows: i32): void { storeRows(dt, x, data, scales, cols, row0, nRows); }
export function get_row(dt: i32, data: usize, scales: usize, rows: i32, cols: i32, row: i32, out: usize): void {
  if (dt == Q4X4) getRowQ4x4(data, scales, rows, cols, row, out);
  else if (dt == Q8X4) getRowQ8x4(data, scales, cols, row, out);
  else getRow(dt, data, scales, cols, row, out);
}
export function rms_norm(x: usize, w: usize, out: usize, n: i32, nTok: i32, eps: f32): void { rmsNorm(x, w, out, n, nTok, eps); }
export function rope(x: usize, nTok: i32, nHeads: i32, headDim: i32, rotDims: i32, pos0: i32, base: f64, layout: i32): void { ropeImpl(x, nTok, nHeads, headDim, rotDims, pos0, base, layout); }
export function softmax(x: usize, n: i32, rows: i32): void { softmaxImpl(x, n, rows); }
export function top_k(x: usize, n: i32, k: i32, outIdx: usize, outVal: usize): void { topK(x, n, k, outIdx, outVal); }
export function add_scaled(a: usize, b: usize, s: f32, n: i32): void { addScaled(a, b, s, n); }

/** e^x as silu and attention's softmax compute it (exp.ts); for tests. */
export function exp_f32(x: f32): f32 { return expF32(x); }
/** x (n floats, n % 4 == 0) <- e^x in place, four lanes at a time (exp.ts's SIMD form); for tests. */
export function exp_f32x4(x: usize, n: i32): void {
  for (let i = 0; i < n; i += 4) v128.store(x + (<usize>i << 2), expF32x4(v128.load(x + (<usize>i << 2))));
}

/** Sum of `bytes` (a multiple of 64) read with v128 loads: the memory-bandwidth yardstick for the matmuls. */
export function stream_read(ptr: usize, bytes: usize): i32 {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  const end = ptr + bytes;
  for (let p = ptr; p < end; p += 64) {
    a = i32x4.add(a, v128.load(p));
    b = i32x4.add(b, v128.load(p, 16));
    c = i32x4.add(c, v128.load(p, 32));
    d = i32x4.add(d, v128.load(p, 48));
  }
  const s = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}

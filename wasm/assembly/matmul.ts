// Matmul and the fused SwiGLU expert FFN over prepared activations. Mat-vec (nTok = 1) streams each weight row
// once; mat-mat walks the tokens in tiles whose prepared activations stay in L2, and reuses each weight row
// (hot in L1) across the tile, so the weights are read from memory ceil(nTok / tile) times.
import { QK, DT_F32, DT_F16, DT_Q8_0, DT_Q4_0, DT_Q4_0X4, DT_Q8_0X4, RELAXED, FUSED_DOT, UNSIGNED_DOTS, rowBytes, align64 } from './common';
import { actBytes, prepare, prepareQ8 } from './activation';
import { dotRow, dotRows2 } from './dot';
import { matvec4Q8Simd } from './dot-q8';
import { matvec4Q4Simd } from './dot-q4';
import { matvecQ4x4, dotRow4TokQ4x4, dotRowQ4x4, dotRows2Tok4Q4x4, rowOffQ4x4, groupStrideQ4x4 } from './dot-q4x4';
import { matvecQ8x4, dotRow4TokQ8x4, dotRowQ8x4, dotRows2Tok4Q8x4 } from './dot-q8x4';
import { siluMul, siluMulF32x4 } from './exp';

const TILE_BYTES: i32 = 96 * 1024; // prepared activations per token tile

@inline function tileTokens(stride: i32, nTok: i32): i32 {
  let t = TILE_BYTES / stride;
  if (t >= 8) t &= ~3; // whole four-token passes (dotRow4TokQ4x4, dotRow4TokQ8x4)
  return t < 1 ? 1 : t > nTok ? nTok : t;
}

@inline function scaleRowBytes(dt: i32, cols: i32): i32 {
  return dt == DT_F32 || dt == DT_F16 ? 0 : (cols / QK) << 2;
}

/** Y (nTok, rows) = act (nTok, cols) @ W^T for an already prepared activation. */
export function matmulPrepared(dt: i32, wq: usize, ws: usize, rows: i32, cols: i32, act: usize, stride: i32, y: usize, nTok: i32, simd: bool): void {
  const rb = <usize>rowBytes(dt, cols);
  const sb = <usize>scaleRowBytes(dt, cols);
  if (isPacked(dt)) { matmulPacked(dt, wq, ws, rows, cols, act, stride, y, nTok, simd); return; }
  if (simd && nTok == 1 && rows >= 4 && (dt == DT_Q8_0 || dt == DT_Q4_0)) {
    matvecQuant(dt, wq, ws, rows, cols, act, y);
    return;
  }
  const tile = tileTokens(stride, nTok);
  for (let t0 = 0; t0 < nTok; t0 += tile) {
    const t1 = min(t0 + tile, nTok);
    // rows r and r + half go together: two sequential streams the hardware prefetchers follow (adjacent rows
    // interleave two streams inside one page, which defeats them and halves the mat-vec speed)
    const half = rows >> 1;
    const offB = <usize>half * rb;
    const soffB = <usize>half * sb;
    for (let r = 0; r < half; r++) {
      const w = wq + <usize>r * rb;
      const s = ws + <usize>r * sb;
      for (let t = t0; t < t1; t++) {
        const yr = y + (<usize>(t * rows + r) << 2);
        dotRows2(dt, w, s, w + offB, s + soffB, act + <usize>(t * stride), cols, yr, yr + (<usize>half << 2), simd);
      }
    }
    if (rows & 1) {
      const r = rows - 1;
      const w = wq + <usize>r * rb;
      const s = ws + <usize>r * sb;
      for (let t = t0; t < t1; t++) {
        store<f32>(y + (<usize>(t * rows + r) << 2), dotRow(dt, w, s, act + <usize>(t * stride), cols, simd));
      }
    }
  }
}

/** h (inter) = silu(gate a) * up a for one prepared token, packed weights: gate into h, up FFN_CHUNK rows at a time. */
function ffnMatvecPacked(dt: i32, gq: usize, gs: usize, uq: usize, us: usize, hidden: i32, inter: i32, a: usize, h: usize): void {
  const rb = <usize>rowBytes(dt, hidden), sb = <usize>scaleRowBytes(dt, hidden);
  matvecPacked(dt, gq, gs, inter, hidden, a, h, true);
  for (let r0 = 0; r0 < inter; r0 += FFN_CHUNK) { // r0 a multiple of four: the chunk's quads are the matrix's
    const n = min(FFN_CHUNK, inter - r0);
    matvecPacked(dt, uq + <usize>r0 * rb, us + <usize>r0 * sb, n, hidden, a, FFN_U, true);
    siluMulInto(h + (<usize>r0 << 2), FFN_U, n, h + (<usize>r0 << 2), 4, true);
  }
}

/**
 * Quantized mat-vec (SIMD), y (rows) = W (rows, cols) of dtype dt (q8_0, q4_0 or packed) @ one prepared
 * activation: four rows a quarter apart per pass (matvec4*Simd), the last rows % 4 one by one.
 */
function matvecQuant(dt: i32, w: usize, ws: usize, rows: i32, cols: i32, act: usize, y: usize): void {
  if (isPacked(dt)) { matvecPacked(dt, w, ws, rows, cols, act, y, true); return; }
  const q = rows >> 2;
  if (q > 0) {
    if (dt == DT_Q8_0) matvec4Q8Simd(w, ws, q, cols, act, y);
    else matvec4Q4Simd(w, ws, q, cols, act, y);
  }
  const rb = <usize>rowBytes(dt, cols), sb = <usize>scaleRowBytes(dt, cols);
  for (let r = q << 2; r < rows; r++) store<f32>(y + (<usize>r << 2), dotRow(dt, w + <usize>r * rb, ws + <usize>r * sb, act, cols, true));
}

/** Weights the relaxed build's executor repacked at load (dot-q4x4.ts, dot-q8x4.ts): read through their own kernels. */
@inline function isPacked(dt: i32): bool {
  return dt == DT_Q4_0X4 || dt == DT_Q8_0X4;
}

@inline function matvecPacked(dt: i32, w: usize, ws: usize, rows: i32, cols: i32, a: usize, y: usize, simd: bool): void {
  if (dt == DT_Q4_0X4) matvecQ4x4(w, ws, rows, cols, a, y, simd);
  else matvecQ8x4(w, ws, rows, cols, a, y, simd);
}

@inline function dotRowPacked(dt: i32, wq: usize, ws: usize, r: i32, rows: i32, cols: i32, a: usize, simd: bool): f32 {
  return dt == DT_Q4_0X4 ? dotRowQ4x4(wq, ws, r, rows, cols, a, simd) : dotRowQ8x4(wq, ws, r, cols, a, simd);
}

/**
 * Y (nTok, rows) = prepared act @ W^T, W packed. SIMD: each weight row (hot in L1) against the token tile's tokens
 * four at a time, each weight vector loaded (and unpacked) once per four; the tile's last (t1 - t0) % 4 tokens one
 * mat-vec each. The scalar twin: one mat-vec per token.
 */
function matmulPacked(dt: i32, wq: usize, ws: usize, rows: i32, cols: i32, act: usize, stride: i32, y: usize, nTok: i32, simd: bool): void {
  const tile = simd ? tileTokens(stride, nTok) : nTok;
  for (let t0 = 0; t0 < nTok; t0 += tile) {
    const t1 = min(t0 + tile, nTok);
    const tq = simd ? t0 + ((t1 - t0) & ~3) : t0;
    if (tq > t0) {
      let r = 0;
      if (twoRowsPacked(dt) && dt == DT_Q8_0X4) { // rows r and r + half together: two sequential streams
        const half = rows >> 1;
        for (; r < half; r++) {
          const yr = y + (<usize>(t0 * rows + r) << 2);
          rows2TokensPacked(dt, wq, ws, r, wq, ws, r + half, rows, cols, act, stride, t0, tq, yr, yr + (<usize>half << 2), <usize>rows << 2);
        }
        r = half << 1;
      } else if (twoRowsPacked(dt)) { // q4_0x4: rows r, r + 1 of a quad, one stream
        for (; r + 1 < rows; r += 2) {
          const yr = y + (<usize>(t0 * rows + r) << 2);
          rows2TokensPacked(dt, wq, ws, r, wq, ws, r + 1, rows, cols, act, stride, t0, tq, yr, yr + 4, <usize>rows << 2);
        }
      }
      for (; r < rows; r++) rowTokensPacked(dt, wq, ws, r, rows, cols, act, stride, t0, tq, y + (<usize>(t0 * rows + r) << 2), <usize>rows << 2);
    }
    for (let t = tq; t < t1; t++) matvecPacked(dt, wq, ws, rows, cols, act + <usize>(t * stride), y + (<usize>(t * rows) << 2), simd);
  }
}

// (Reading a q4_0x4 quad's lines in address order before its first row's four-token passes, as attention's
// warmRows, ran granite's expert FFN 1.05-1.09x at 4-16 tokens but granite-shaped prefill 0.965x end to end.)
/** y[(t - t0) * ystep] = packed row r . token t's prepared activation, t = t0..t1-1 (t1 - t0 a multiple of 4), four at a time. */
function rowTokensPacked(dt: i32, wq: usize, ws: usize, r: i32, rows: i32, cols: i32, act: usize, stride: i32, t0: i32, t1: i32, y: usize, ystep: usize): void {
  if (dt == DT_Q4_0X4) for (let t = t0; t < t1; t += 4) dotRow4TokQ4x4(wq, ws, r, rows, cols, act + <usize>(t * stride), stride, y + <usize>(t - t0) * ystep, ystep);
  else for (let t = t0; t < t1; t += 4) dotRow4TokQ8x4(wq, ws, r, cols, act + <usize>(t * stride), stride, y + <usize>(t - t0) * ystep, ystep);
}

/** Whether the packed dtype has a two-row four-token kernel on this engine (dotRows2Tok4Q8x4, dotRows2Tok4Q4x4). */
@inline function twoRowsPacked(dt: i32): bool {
  return RELAXED && ((dt == DT_Q8_0X4 && UNSIGNED_DOTS) || (dt == DT_Q4_0X4 && FUSED_DOT));
}

/**
 * Row ra of matrix A and row rb of matrix B (same shape, packed, dtype dt) against tokens t0..t1-1 (a multiple of 4),
 * four at a time: ya / yb[(t - t0) * ystep]. Where twoRowsPacked(dt); q4_0x4 rows whose group strides differ (one in
 * a quad, one apart) go one at a time.
 */
function rows2TokensPacked(dt: i32, aq: usize, as: usize, ra: i32, bq: usize, bs: usize, rb: i32, rows: i32, cols: i32, act: usize, stride: i32, t0: i32, t1: i32, ya: usize, yb: usize, ystep: usize): void {
  if (dt == DT_Q8_0X4) {
    const oa = <usize>ra * <usize>cols, ob = <usize>rb * <usize>cols;
    for (let t = t0; t < t1; t += 4) {
      const dy = <usize>(t - t0) * ystep;
      dotRows2Tok4Q8x4(aq + oa, as + (oa >> 3), bq + ob, bs + (ob >> 3), cols, act + <usize>(t * stride), stride, ya + dy, yb + dy, ystep);
    }
    return;
  }
  const gs = groupStrideQ4x4(ra, rows, cols);
  if (gs != groupStrideQ4x4(rb, rows, cols)) {
    rowTokensPacked(dt, aq, as, ra, rows, cols, act, stride, t0, t1, ya, ystep);
    rowTokensPacked(dt, bq, bs, rb, rows, cols, act, stride, t0, t1, yb, ystep);
    return;
  }
  const oa = rowOffQ4x4(ra, rows, cols), ob = rowOffQ4x4(rb, rows, cols);
  for (let t = t0; t < t1; t += 4) {
    const dy = <usize>(t - t0) * ystep;
    dotRows2Tok4Q4x4(aq + oa, as + (oa >> 2), bq + ob, bs + (ob >> 2), gs, cols, act + <usize>(t * stride), stride, ya + dy, yb + dy, ystep);
  }
}

/** Scratch bytes matmul() needs. */
export function matmulScratch(dt: i32, cols: i32, nTok: i32): i32 {
  return actBytes(dt, cols) * nTok;
}

/** Y (nTok, rows) = X (nTok, cols) @ W^T. */
export function matmul(dt: i32, wq: usize, ws: usize, rows: i32, cols: i32, x: usize, y: usize, nTok: i32, scratch: usize, simd: bool): void {
  const stride = actBytes(dt, cols);
  prepare(dt, x, nTok, cols, scratch, stride, simd);
  matmulPrepared(dt, wq, ws, rows, cols, scratch, stride, y, nTok, simd);
}

/** Scratch bytes ffnSwiglu() needs: prepared X, the intermediate H (f32), prepared H. */
export function ffnScratch(dtGateUp: i32, dtDown: i32, hidden: i32, inter: i32, nTok: i32): i32 {
  return actBytes(dtGateUp, hidden) * nTok + align64((inter * nTok) << 2) + actBytes(dtDown, inter) * nTok;
}

const FFN_CHUNK: i32 = 64; // what FFN_G / FFN_U hold: one row's gate and up dots of that many tokens, or rows of one token
const FFN_G: usize = memory.data(FFN_CHUNK * 4, 16);
const FFN_U: usize = memory.data(FFN_CHUNK * 4, 16);
const FFN_G2: usize = memory.data(FFN_CHUNK * 4, 16); // the second row's, where two rows go together (rows2TokensPacked)
const FFN_U2: usize = memory.data(FFN_CHUNK * 4, 16);

/**
 * out[i * ostep] = siluMul(g[i], u[i]) for i < n: four at a time (siluMulF32x4) when simd, the rest one by one; the
 * same bits either way. g and u contiguous f32 (FFN_G / FFN_U or a row of h), out strided (h's column of a row).
 */
function siluMulInto(g: usize, u: usize, n: i32, out: usize, ostep: usize, simd: bool): void {
  let i = 0;
  if (simd) {
    for (; i + 4 <= n; i += 4) {
      const v = siluMulF32x4(v128.load(g + (<usize>i << 2)), v128.load(u + (<usize>i << 2)));
      const o = out + <usize>i * ostep;
      if (ostep == 4) { v128.store(o, v); continue; }
      store<f32>(o, f32x4.extract_lane(v, 0)); store<f32>(o + ostep, f32x4.extract_lane(v, 1));
      store<f32>(o + 2 * ostep, f32x4.extract_lane(v, 2)); store<f32>(o + 3 * ostep, f32x4.extract_lane(v, 3));
    }
  }
  for (; i < n; i++) store<f32>(out + <usize>i * ostep, siluMul(load<f32>(g + (<usize>i << 2)), load<f32>(u + (<usize>i << 2))));
}

/** *yG, *yU = row r of gate and of up (inter x hidden, dtype dt) . prepared activation a. */
@inline function gateUpRow(dt: i32, gq: usize, gs: usize, uq: usize, us: usize, r: i32, inter: i32, hidden: i32, a: usize, yG: usize, yU: usize, simd: bool): void {
  if (isPacked(dt)) { // the scalar twin of the packed path (its SIMD FFN takes the four-token kernels)
    store<f32>(yG, dotRowPacked(dt, gq, gs, r, inter, hidden, a, simd));
    store<f32>(yU, dotRowPacked(dt, uq, us, r, inter, hidden, a, simd));
    return;
  }
  const rb = <usize>rowBytes(dt, hidden) * <usize>r, sb = <usize>scaleRowBytes(dt, hidden) * <usize>r;
  dotRows2(dt, gq + rb, gs + sb, uq + rb, us + sb, a, hidden, yG, yU, simd);
}

/**
 * Y (nTok, hidden) = down(silu(gate X) * up X). gate/up: (inter, hidden) of dtype dtGU; down: (hidden, inter) of
 * dtype dtD. X is prepared once for gate and up; the intermediate is re-prepared (re-quantized) for down, as ggml.
 */
export function ffnSwiglu(dtGU: i32, gq: usize, gs: usize, uq: usize, us: usize, dtD: i32, dq: usize, ds: usize,
  hidden: i32, inter: i32, x: usize, y: usize, nTok: i32, scratch: usize, simd: bool): void {
  prepare(dtGU, x, nTok, hidden, scratch, actBytes(dtGU, hidden), simd);
  ffnPrepared(dtGU, gq, gs, uq, us, dtD, dq, ds, hidden, inter, y, nTok, scratch, simd);
}

/**
 * ffnSwiglu with X given as q8_0 blocks, xq (nTok, hidden) i8 and xd (nTok, hidden/32) f16, for quantized gate/up
 * (dtGU q8_0 or q4_0): the blocks are X's prepared quantization, so nothing is dequantized or quantized again.
 */
export function ffnSwigluQ8(dtGU: i32, gq: usize, gs: usize, uq: usize, us: usize, dtD: i32, dq: usize, ds: usize,
  hidden: i32, inter: i32, xq: usize, xd: usize, y: usize, nTok: i32, scratch: usize, simd: bool): void {
  prepareQ8(dtGU, xq, xd, nTok, hidden, scratch, actBytes(dtGU, hidden), simd);
  ffnPrepared(dtGU, gq, gs, uq, us, dtD, dq, ds, hidden, inter, y, nTok, scratch, simd);
}

/** The FFN over X already prepared at the start of scratch (stride actBytes(dtGU, hidden)). */
function ffnPrepared(dtGU: i32, gq: usize, gs: usize, uq: usize, us: usize, dtD: i32, dq: usize, ds: usize,
  hidden: i32, inter: i32, y: usize, nTok: i32, scratch: usize, simd: bool): void {
  const strideX = actBytes(dtGU, hidden);
  const actX = scratch;
  const h = actX + <usize>(strideX * nTok);
  const actH = h + <usize>align64((inter * nTok) << 2);
  const strideH = actBytes(dtD, inter);

  // H (nTok, inter): gate and up rows are read together so each pair is reused across the token tile
  const rb = <usize>rowBytes(dtGU, hidden);
  const sb = <usize>scaleRowBytes(dtGU, hidden);
  const tile = tileTokens(strideX, nTok);
  if (simd && isPacked(dtGU)) {
    // packed weights: per tile, the gate row, then the up row, against up to FFN_CHUNK of its tokens four at a time;
    // the tile's last nTok % 4 tokens (and a lone token: decode) one at a time, four rows per pass (mat-vec)
    for (let t0 = 0; t0 < nTok; t0 += tile) {
      const t1 = min(t0 + tile, nTok);
      const tq = t0 + ((t1 - t0) & ~3);
      for (let t = tq; t < t1; t++) ffnMatvecPacked(dtGU, gq, gs, uq, us, hidden, inter, actX + <usize>(t * strideX), h + (<usize>(t * inter) << 2));
      if (tq == t0) continue;
      // two rows per four-token pass (twoRowsPacked) as sequential streams: q4_0x4 rows r, r + 1 of a quad (the gate
      // pair, then the up pair); q8_0x4 the gate row with its up row
      const pairQ4 = twoRowsPacked(dtGU) && dtGU == DT_Q4_0X4, gateWithUp = twoRowsPacked(dtGU) && dtGU == DT_Q8_0X4;
      for (let r = 0; r < inter; r++) {
        const pair = pairQ4 && r + 1 < inter;
        for (let c0 = t0; c0 < tq; c0 += FFN_CHUNK) {
          const c1 = min(c0 + FFN_CHUNK, tq);
          const hr = h + (<usize>(c0 * inter + r) << 2);
          if (pair) {
            rows2TokensPacked(dtGU, gq, gs, r, gq, gs, r + 1, inter, hidden, actX, strideX, c0, c1, FFN_G, FFN_G2, 4);
            rows2TokensPacked(dtGU, uq, us, r, uq, us, r + 1, inter, hidden, actX, strideX, c0, c1, FFN_U, FFN_U2, 4);
            siluMulInto(FFN_G2, FFN_U2, c1 - c0, hr + 4, <usize>inter << 2, true);
          } else if (gateWithUp) rows2TokensPacked(dtGU, gq, gs, r, uq, us, r, inter, hidden, actX, strideX, c0, c1, FFN_G, FFN_U, 4);
          else {
            rowTokensPacked(dtGU, gq, gs, r, inter, hidden, actX, strideX, c0, c1, FFN_G, 4);
            rowTokensPacked(dtGU, uq, us, r, inter, hidden, actX, strideX, c0, c1, FFN_U, 4);
          }
          siluMulInto(FFN_G, FFN_U, c1 - c0, hr, <usize>inter << 2, true);
        }
        if (pair) r++;
      }
    }
  } else for (let t0 = 0; t0 < nTok; t0 += tile) {
    const t1 = min(t0 + tile, nTok);
    if (nTok == 1) { // decode: the gate and up dots of FFN_CHUNK rows, then their silu products four at a time
      for (let r0 = 0; r0 < inter; r0 += FFN_CHUNK) {
        const n = min(FFN_CHUNK, inter - r0);
        for (let r = r0; r < r0 + n; r++) {
          const i = <usize>(r - r0) << 2;
          gateUpRow(dtGU, gq, gs, uq, us, r, inter, hidden, actX, FFN_G + i, FFN_U + i, simd);
        }
        siluMulInto(FFN_G, FFN_U, n, h + (<usize>r0 << 2), 4, simd);
      }
      continue;
    }
    for (let r = 0; r < inter; r++) { // each row pair against the tile's tokens, FFN_CHUNK at a time
      for (let c0 = t0; c0 < t1; c0 += FFN_CHUNK) {
        const c1 = min(c0 + FFN_CHUNK, t1);
        for (let t = c0; t < c1; t++) {
          const i = <usize>(t - c0) << 2;
          gateUpRow(dtGU, gq, gs, uq, us, r, inter, hidden, actX + <usize>(t * strideX), FFN_G + i, FFN_U + i, simd);
        }
        siluMulInto(FFN_G, FFN_U, c1 - c0, h + (<usize>(c0 * inter + r) << 2), <usize>inter << 2, simd);
      }
    }
  }
  prepare(dtD, h, nTok, inter, actH, strideH, simd);
  matmulPrepared(dtD, dq, ds, hidden, inter, actH, strideH, y, nTok, simd);
}

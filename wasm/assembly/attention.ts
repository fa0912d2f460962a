// Causal multi-head attention with GQA, for decode (nTok = 1) and prefill (nTok > 1), over an f32 KV cache
// (attention) or one of any dtype (attentionKv). Keys and values are taken four positions at a time, eight in the f32
// kernel's SIMD path (independent accumulators for the q.k dots, one register pass of the output per four or eight
// values). Every SIMD loop has a scalar
// twin with the same float order per element.
import { QK, DT_F32, DT_F16, DT_Q8_0, DT_Q4_0, align64, rowBytes } from './common';
import { actBytes, prepare } from './activation';
import { dotF32Simd, dotF32Scalar, dotRow } from './dot';
import { getRow, widenRowsF16 } from './elementwise';
import { hsumF32 } from './simd-util';
import { expF32, expF32x4 } from './exp';
import { dot4RowsQ8Simd } from './dot-q8';
import { dot4RowsQ4Simd } from './dot-q4';
import { keys4x2Q8, values4x2Q8 } from './attention-q8';

/** s[0..3] = q . k_j * scale for keys k0, k0 + ks, k0 + 2ks, k0 + 3ks; each dot in dotF32Simd's order. */
function dot4Simd(q: usize, k0: usize, ks: usize, n: i32, scale: f32, s: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const k1 = k0 + ks, k2 = k1 + ks, k3 = k2 + ks;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const qv = v128.load(q + o);
    a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(k0 + o)));
    a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(k1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(k2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(k3 + o)));
  }
  let s0 = hsumF32(a0), s1 = hsumF32(a1), s2 = hsumF32(a2), s3 = hsumF32(a3);
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const qi = load<f32>(q + o);
    s0 += qi * load<f32>(k0 + o); s1 += qi * load<f32>(k1 + o); s2 += qi * load<f32>(k2 + o); s3 += qi * load<f32>(k3 + o);
  }
  store<f32>(s, s0 * scale); store<f32>(s, s1 * scale, 4); store<f32>(s, s2 * scale, 8); store<f32>(s, s3 * scale, 12);
}

/** dot4Simd over keys k0 + m*ks, m = 0..7: each dot in dotF32Simd's order, s[0..7]; n a multiple of 4. */
function dot8Simd(q: usize, k0: usize, ks: usize, n: i32, scale: f32, s: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
  const k1 = k0 + ks, k2 = k1 + ks, k3 = k2 + ks, k4 = k3 + ks, k5 = k4 + ks, k6 = k5 + ks, k7 = k6 + ks;
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    const qv = v128.load(q + o);
    a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(k0 + o)));
    a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(k1 + o)));
    a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(k2 + o)));
    a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(k3 + o)));
    a4 = f32x4.add(a4, f32x4.mul(qv, v128.load(k4 + o)));
    a5 = f32x4.add(a5, f32x4.mul(qv, v128.load(k5 + o)));
    a6 = f32x4.add(a6, f32x4.mul(qv, v128.load(k6 + o)));
    a7 = f32x4.add(a7, f32x4.mul(qv, v128.load(k7 + o)));
  }
  store<f32>(s, hsumF32(a0) * scale); store<f32>(s, hsumF32(a1) * scale, 4); store<f32>(s, hsumF32(a2) * scale, 8); store<f32>(s, hsumF32(a3) * scale, 12);
  store<f32>(s, hsumF32(a4) * scale, 16); store<f32>(s, hsumF32(a5) * scale, 20); store<f32>(s, hsumF32(a6) * scale, 24); store<f32>(s, hsumF32(a7) * scale, 28);
}

/** o (n) = (((o + p0 v0) + p1 v1) + p2 v2) + p3 v3 element-wise, v_m = v0 + m*vs; p = 4 floats at `p`. */
function axpy4(o: usize, v0: usize, vs: usize, p: usize, n: i32, simd: bool): void {
  const p0 = load<f32>(p), p1 = load<f32>(p, 4), p2 = load<f32>(p, 8), p3 = load<f32>(p, 12);
  const v1 = v0 + vs, v2 = v1 + vs, v3 = v2 + vs;
  let i = 0;
  if (simd) {
    const q0 = f32x4.splat(p0), q1 = f32x4.splat(p1), q2 = f32x4.splat(p2), q3 = f32x4.splat(p3);
    for (; i + 4 <= n; i += 4) {
      const at = <usize>i << 2;
      let acc = f32x4.add(v128.load(o + at), f32x4.mul(q0, v128.load(v0 + at)));
      acc = f32x4.add(acc, f32x4.mul(q1, v128.load(v1 + at)));
      acc = f32x4.add(acc, f32x4.mul(q2, v128.load(v2 + at)));
      v128.store(o + at, f32x4.add(acc, f32x4.mul(q3, v128.load(v3 + at))));
    }
  }
  for (; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(o + at, (((load<f32>(o + at) + p0 * load<f32>(v0 + at)) + p1 * load<f32>(v1 + at)) + p2 * load<f32>(v2 + at)) + p3 * load<f32>(v3 + at));
  }
}

/** axpy4 over eight rows v_m = v0 + m*vs, p = 8 floats: the same sum order as two axpy4 calls, one pass over o. */
function axpy8(o: usize, v0: usize, vs: usize, p: usize, n: i32, simd: bool): void {
  const p0 = load<f32>(p), p1 = load<f32>(p, 4), p2 = load<f32>(p, 8), p3 = load<f32>(p, 12);
  const p4 = load<f32>(p, 16), p5 = load<f32>(p, 20), p6 = load<f32>(p, 24), p7 = load<f32>(p, 28);
  const v1 = v0 + vs, v2 = v1 + vs, v3 = v2 + vs, v4 = v3 + vs, v5 = v4 + vs, v6 = v5 + vs, v7 = v6 + vs;
  let i = 0;
  if (simd) {
    for (; i + 4 <= n; i += 4) {
      const at = <usize>i << 2;
      let acc = f32x4.add(v128.load(o + at), f32x4.mul(f32x4.splat(p0), v128.load(v0 + at)));
      acc = f32x4.add(acc, f32x4.mul(f32x4.splat(p1), v128.load(v1 + at)));
      acc = f32x4.add(acc, f32x4.mul(f32x4.splat(p2), v128.load(v2 + at)));
      acc = f32x4.add(acc, f32x4.mul(f32x4.splat(p3), v128.load(v3 + at)));
      acc = f32x4.add(acc, f32x4.mul(f32x4.splat(p4), v128.load(v4 + at)));
      acc = f32x4.add(acc, f32x4.mul(f32x4.splat(p5), v128.load(v5 + at)));
      acc = f32x4.add(acc, f32x4.mul(f32x4.splat(p6), v128.load(v6 + at)));
      v128.store(o + at, f32x4.add(acc, f32x4.mul(f32x4.splat(p7), v128.load(v7 + at))));
    }
  }
  if (i < n) { // the rest (all of it in the scalar twin): two axpy4 passes, the same sums in the same order
    const at = <usize>i << 2;
    axpy4(o + at, v0 + at, vs, p, n - i, false);
    axpy4(o + at, v4 + at, vs, p + 16, n - i, false);
  }
}

/**
 * Two query heads of one KV head (GQA): dot4Simd's scores for both, s0 and s1, from one pass over the four keys
 * (each key vector loaded once for the two heads); each dot in dotF32Simd's order. n a multiple of 4.
 */
function dot4x2Simd(q0: usize, q1: usize, k0: usize, ks: usize, n: i32, scale: f32, s0: usize, s1: usize): void {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  const k1 = k0 + ks, k2 = k1 + ks, k3 = k2 + ks;
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    const qa = v128.load(q0 + o), qb = v128.load(q1 + o);
    let kv = v128.load(k0 + o);
    a0 = f32x4.add(a0, f32x4.mul(qa, kv)); b0 = f32x4.add(b0, f32x4.mul(qb, kv));
    kv = v128.load(k1 + o);
    a1 = f32x4.add(a1, f32x4.mul(qa, kv)); b1 = f32x4.add(b1, f32x4.mul(qb, kv));
    kv = v128.load(k2 + o);
    a2 = f32x4.add(a2, f32x4.mul(qa, kv)); b2 = f32x4.add(b2, f32x4.mul(qb, kv));
    kv = v128.load(k3 + o);
    a3 = f32x4.add(a3, f32x4.mul(qa, kv)); b3 = f32x4.add(b3, f32x4.mul(qb, kv));
  }
  store<f32>(s0, hsumF32(a0) * scale); store<f32>(s0, hsumF32(a1) * scale, 4); store<f32>(s0, hsumF32(a2) * scale, 8); store<f32>(s0, hsumF32(a3) * scale, 12);
  store<f32>(s1, hsumF32(b0) * scale); store<f32>(s1, hsumF32(b1) * scale, 4); store<f32>(s1, hsumF32(b2) * scale, 8); store<f32>(s1, hsumF32(b3) * scale, 12);
}

/**
 * axpy4 (SIMD) for two query heads of one KV head: o0 and o1 each get their four weighted value rows, each element
 * in axpy4's order, from one load of each value vector. n a multiple of 4.
 */
function axpy4x2(o0: usize, o1: usize, v0: usize, vs: usize, p: usize, q: usize, n: i32): void {
  const p0 = f32x4.splat(load<f32>(p)), p1 = f32x4.splat(load<f32>(p, 4)), p2 = f32x4.splat(load<f32>(p, 8)), p3 = f32x4.splat(load<f32>(p, 12));
  const q0 = f32x4.splat(load<f32>(q)), q1 = f32x4.splat(load<f32>(q, 4)), q2 = f32x4.splat(load<f32>(q, 8)), q3 = f32x4.splat(load<f32>(q, 12));
  const v1 = v0 + vs, v2 = v1 + vs, v3 = v2 + vs;
  for (let i = 0; i < n; i += 4) {
    const at = <usize>i << 2;
    let x = v128.load(v0 + at);
    let a = f32x4.add(v128.load(o0 + at), f32x4.mul(p0, x)), b = f32x4.add(v128.load(o1 + at), f32x4.mul(q0, x));
    x = v128.load(v1 + at);
    a = f32x4.add(a, f32x4.mul(p1, x)); b = f32x4.add(b, f32x4.mul(q1, x));
    x = v128.load(v2 + at);
    a = f32x4.add(a, f32x4.mul(p2, x)); b = f32x4.add(b, f32x4.mul(q2, x));
    x = v128.load(v3 + at);
    v128.store(o0 + at, f32x4.add(a, f32x4.mul(p3, x))); v128.store(o1 + at, f32x4.add(b, f32x4.mul(q3, x)));
  }
}

/** o (n) += p * v (n). */
function axpy(o: usize, v: usize, p: f32, n: i32, simd: bool): void {
  let i = 0;
  if (simd) {
    const ps = f32x4.splat(p);
    for (; i + 4 <= n; i += 4) {
      const at = o + (<usize>i << 2);
      v128.store(at, f32x4.add(v128.load(at), f32x4.mul(ps, v128.load(v + (<usize>i << 2)))));
    }
  }
  for (; i < n; i++) {
    const at = o + (<usize>i << 2);
    store<f32>(at, load<f32>(at) + p * load<f32>(v + (<usize>i << 2)));
  }
}

/** Whether heads h, h + 1 go together in attention(): `pairs` (an even GQA group), h even, and h + 1 in the block. */
@inline function pairAt(pairs: bool, h: i32, h1: i32): bool {
  return pairs && (h & 1) == 0 && h + 1 < h1;
}

/** Scratch of the f32 kernel at a context of nCtx positions: the scores of a block of query heads (attentionHeadBlock). */
export function attentionScratch(nCtx: i32, nHead: i32): i32 {
  return attentionHeadBlock(nCtx, nHead) * (scoreStride(nCtx) << 2);
}

/** Query heads whose scores the f32 kernel holds at once: as many as SCORES_BUDGET allows, at least one. */
@inline function attentionHeadBlock(nCtx: i32, nHead: i32): i32 {
  const hb = SCORES_BUDGET / (scoreStride(nCtx) << 2);
  return hb < 1 ? 1 : hb > nHead ? nHead : hb;
}

/**
 * q, out: (nTok, nHead*headDim); kCache, vCache: (maxCtx, nKvHead*headDim). Query t (position pos0 + t) attends
 * to positions 0..pos0+t. scores = q.k * scale, softmax with the max subtracted and the sum in f64 (ggml's
 * soft_max), out = sum_j p_j v_j. `scores`: attentionScratch(pos0 + nTok, nHead) bytes. out may alias q.
 * Position-major over a block of heads: four cache rows at a time serve every head of the block, so K and V stream
 * through once, row after row, where head by head each head's slice of a row was its own strided pass over the
 * cache (a decode step at a long context is bound by those reads). Each head's sums keep their order, so the head
 * block changes no bit.
 */
export function attention(q: usize, k: usize, v: usize, out: usize, nTok: i32, pos0: i32, nHead: i32, nKvHead: i32,
  headDim: i32, scale: f32, scores: usize, simd: bool): void {
  const group = nHead / nKvHead;
  const qStride = nHead * headDim;
  const rowBytes = <usize>(nKvHead * headDim) << 2;
  const headBytes = <usize>headDim << 2;
  const hb = attentionHeadBlock(pos0 + nTok, nHead);
  const sb = <usize>(scoreStride(pos0 + nTok) << 2); // head h - h0's scores at scores + (h - h0) * sb
  // GQA with an even group: heads h, h + 1 (h even) share a KV head, and go together (dot4x2Simd, axpy4x2)
  const pairs = simd && (group & 1) == 0 && (headDim & 3) == 0;
  for (let t = 0; t < nTok; t++) {
    const n = pos0 + t + 1;
    const qt = q + (<usize>(t * qStride) << 2);
    const ot = out + (<usize>(t * qStride) << 2);
    for (let h0 = 0; h0 < nHead; h0 += hb) {
      const h1 = min(h0 + hb, nHead);
      let j = 0;
      if (simd && (headDim & 3) == 0) {
        for (; j + 8 <= n; j += 8) {
          const kj = k + <usize>j * rowBytes;
          if (t == 0 && (j & (WARM_ROWS - 1)) == 0) warmRows(kj, <usize>min(WARM_ROWS, n - j) * rowBytes);
          for (let h = h0; h < h1; h++) {
            const sh = scores + <usize>(h - h0) * sb + (<usize>j << 2), kh = kj + <usize>(h / group) * headBytes;
            if (pairAt(pairs, h, h1)) { // h, h + 1: one KV head (group even)
              const qh = qt + <usize>h * headBytes;
              dot4x2Simd(qh, qh + headBytes, kh, rowBytes, headDim, scale, sh, sh + sb);
              dot4x2Simd(qh, qh + headBytes, kh + (rowBytes << 2), rowBytes, headDim, scale, sh + 16, sh + sb + 16);
              h++;
              continue;
            }
            dot8Simd(qt + <usize>h * headBytes, kh, rowBytes, headDim, scale, sh);
          }
        }
      }
      if (simd) {
        for (; j + 4 <= n; j += 4) {
          const kj = k + <usize>j * rowBytes;
          for (let h = h0; h < h1; h++) {
            const sh = scores + <usize>(h - h0) * sb + (<usize>j << 2), kh = kj + <usize>(h / group) * headBytes;
            if (pairAt(pairs, h, h1)) {
              dot4x2Simd(qt + <usize>h * headBytes, qt + <usize>(h + 1) * headBytes, kh, rowBytes, headDim, scale, sh, sh + sb);
              h++;
              continue;
            }
            dot4Simd(qt + <usize>h * headBytes, kh, rowBytes, headDim, scale, sh);
          }
        }
      }
      for (; j < n; j++) {
        const kj = k + <usize>j * rowBytes;
        for (let h = h0; h < h1; h++) {
          const qrow = qt + <usize>h * headBytes, kr = kj + <usize>(h / group) * headBytes;
          store<f32>(scores + <usize>(h - h0) * sb + (<usize>j << 2), (simd ? dotF32Simd(qrow, kr, headDim) : dotF32Scalar(qrow, kr, headDim)) * scale);
        }
      }
      for (let h = h0; h < h1; h++) softmaxScores(scores + <usize>(h - h0) * sb, n);
      memory.fill(ot + <usize>h0 * headBytes, 0, <usize>(h1 - h0) * headBytes); // after the q rows were read: out may alias q
      for (j = 0; j + 8 <= n; j += 8) {
        const vj = v + <usize>j * rowBytes;
        if (simd && t == 0 && (j & (WARM_ROWS - 1)) == 0) warmRows(vj, <usize>min(WARM_ROWS, n - j) * rowBytes);
        for (let h = h0; h < h1; h++) {
          const oh = ot + <usize>h * headBytes, vh = vj + <usize>(h / group) * headBytes, ph = scores + <usize>(h - h0) * sb + (<usize>j << 2);
          if (pairAt(pairs, h, h1)) { // axpy8's order: rows j..j+3, then j+4..j+7
            axpy4x2(oh, oh + headBytes, vh, rowBytes, ph, ph + sb, headDim);
            axpy4x2(oh, oh + headBytes, vh + (rowBytes << 2), rowBytes, ph + 16, ph + sb + 16, headDim);
            h++;
            continue;
          }
          axpy8(oh, vh, rowBytes, ph, headDim, simd);
        }
      }
      for (; j + 4 <= n; j += 4) {
        const vj = v + <usize>j * rowBytes;
        for (let h = h0; h < h1; h++) {
          const oh = ot + <usize>h * headBytes, vh = vj + <usize>(h / group) * headBytes, ph = scores + <usize>(h - h0) * sb + (<usize>j << 2);
          if (pairAt(pairs, h, h1)) {
            axpy4x2(oh, oh + headBytes, vh, rowBytes, ph, ph + sb, headDim);
            h++;
            continue;
          }
          axpy4(oh, vh, rowBytes, ph, headDim, simd);
        }
      }
      for (; j < n; j++) {
        const vj = v + <usize>j * rowBytes;
        for (let h = h0; h < h1; h++) {
          axpy(ot + <usize>h * headBytes, vj + <usize>(h / group) * headBytes, load<f32>(scores + <usize>(h - h0) * sb + (<usize>j << 2)), headDim, simd);
        }
      }
    }
  }
}

// The first query's passes over K and V read each block of WARM_ROWS cache rows once, in address order, before its
// dots and sums: the eight-row steps read eight rows 2 KB apart in turn, which the hardware prefetchers follow badly, so
// out of cache a decode step waited on memory (1,024 positions of granite's f32 cache: 1.3x per layer with the reads,
// the eight rows then coming from L1/L2). Later queries of a prefill block find the rows in cache.
const WARM_ROWS: i32 = 32; // a power of two: 64 KB of granite's f32 rows
const WARM_SINK: usize = memory.data(16, 16);

/** Loads `bytes` at p, every cache line once, in address order; the result is stored where nothing reads it. */
function warmRows(p: usize, bytes: usize): void {
  let a = i32x4.splat(0), b = i32x4.splat(0);
  let o: usize = 0;
  for (; o + 256 <= bytes; o += 256) { // one load per 64-byte line, four lines a step
    a = v128.xor(a, v128.xor(v128.load(p + o), v128.load(p + o, 64)));
    b = v128.xor(b, v128.xor(v128.load(p + o, 128), v128.load(p + o, 192)));
  }
  for (; o + 16 <= bytes; o += 64) a = v128.xor(a, v128.load(p + o));
  v128.store(WARM_SINK, v128.xor(a, b));
}

/**
 * scores (n) <- softmax(scores): the max subtracted, the sum in f64 (as ggml's soft_max), in two f64x2 pairs of
 * lanes (positions 4i, 4i + 1 and 4i + 2, 4i + 3) added up at the end: one chain of four f64 adds per step was the
 * loop's critical path (decode attention per layer 1.02-1.04x, dev/ab-attention-kv.mts). Every twin calls this.
 */
function softmaxScores(scores: usize, n: i32): void {
  let mx = -Infinity as f32;
  let j = 0;
  // the max in four lanes of pmax (one maxps; f32.max's NaN checks cost ~8 instructions an element). pmax may drop a
  // NaN where max keeps it, and max(-0, +0) may differ in sign: the output is the same (a NaN score makes every
  // output NaN through the sum either way; s - (+-0) is s, and exp(+-0) is 1)
  if (n >= 8) {
    let m4 = v128.load(scores);
    for (j = 4; j + 4 <= n; j += 4) m4 = f32x4.pmax(m4, v128.load(scores + (<usize>j << 2)));
    mx = max<f32>(max<f32>(f32x4.extract_lane(m4, 0), f32x4.extract_lane(m4, 1)), max<f32>(f32x4.extract_lane(m4, 2), f32x4.extract_lane(m4, 3)));
  }
  for (; j < n; j++) mx = max<f32>(mx, load<f32>(scores + (<usize>j << 2)));
  let lo2 = f64x2.splat(0), hi2 = f64x2.splat(0);
  j = 0;
  const mv = f32x4.splat(mx);
  for (; j + 4 <= n; j += 4) { // the exponentials four at a time (expF32x4 = expF32 lane by lane)
    const at = scores + (<usize>j << 2);
    const e = expF32x4(f32x4.sub(v128.load(at), mv));
    v128.store(at, e);
    lo2 = f64x2.add(lo2, f64x2.promote_low_f32x4(e));
    hi2 = f64x2.add(hi2, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1)));
  }
  let sum = (f64x2.extract_lane(lo2, 0) + f64x2.extract_lane(lo2, 1)) + (f64x2.extract_lane(hi2, 0) + f64x2.extract_lane(hi2, 1));
  for (; j < n; j++) {
    const e = expF32(load<f32>(scores + (<usize>j << 2)) - mx);
    store<f32>(scores + (<usize>j << 2), e);
    sum += <f64>e;
  }
  const inv = <f32>(1.0 / sum);
  const iv = f32x4.splat(inv);
  for (j = 0; j + 4 <= n; j += 4) v128.store(scores + (<usize>j << 2), f32x4.mul(v128.load(scores + (<usize>j << 2)), iv));
  for (; j < n; j++) store<f32>(scores + (<usize>j << 2), load<f32>(scores + (<usize>j << 2)) * inv);
}

/**
 * Bytes of the prepared queries: one query head as q8_0 dot input, or a GQA group's heads as f16 dot input (which
 * also holds the two q8_0 heads of q8KeyScores2: actBytes(DT_F16) >= actBytes(DT_Q8_0) wherever group >= 2).
 */
function headActBytes(headDim: i32, group: i32): i32 {
  return max<i32>(actBytes(DT_Q8_0, headDim), group * actBytes(DT_F16, headDim));
}

// attentionKv's scores of a block of query tokens stay within this many bytes (below the FFN's prefill scratch,
// so the heap's high-water mark does not move); V rows are dequantized V_BLOCK positions at a time
const SCORES_BUDGET: i32 = 256 * 1024;
const V_BLOCK: i32 = 64; // a multiple of 4: every sum keeps the order of four-position steps

/** f32 slots per query's scores at a context of nCtx positions (room for four-key writes). */
@inline function scoreStride(nCtx: i32): i32 {
  return (nCtx + 3) & ~3;
}

/** Query tokens whose scores are held at once: as many as SCORES_BUDGET allows, at least one. */
@inline function tokenBlock(nCtx: i32, group: i32, nTok: i32): i32 {
  const tb = SCORES_BUDGET / (group * (scoreStride(nCtx) << 2));
  return tb < 1 ? 1 : tb > nTok ? nTok : tb;
}

/**
 * Scratch of attentionKv for nTok queries ending at position nCtx - 1: the scores of a token block's queries, one
 * prepared query, V_BLOCK dequantized V rows. src/kernels/attention-scratch.ts says the same for admission.
 */
export function attentionKvScratch(nCtx: i32, headDim: i32, group: i32, nTok: i32): i32 {
  const scores = tokenBlock(nCtx, group, nTok) * group * (scoreStride(nCtx) << 2);
  return align64(scores) + align64(headActBytes(headDim, group)) + ((V_BLOCK * headDim) << 2);
}

/**
 * attention over a KV cache of dtypes dtK / dtV (src/format/quant.ts's kernel layout: quants at k / v, f32
 * scales per 32-block at ks / vs; headDim % 32 == 0 for q8_0/q4_0). As ggml's CPU flash attention: each query
 * head is converted once to K's dot input (activation.ts's prepare: f16-rounded or q8_0) and dotted with each key
 * head like a matmul row (dotRow); V heads are dequantized exactly (getRow) and accumulated as in the f32 kernel.
 * Per KV head, a block of query tokens (prefill) and the query heads of its GQA group go together: their scores
 * first, then each V row, dequantized once, serves all of them. Every output element's sum keeps its order (four
 * positions a step, the last n % 4 one by one), so the block size changes no bit. Both f32: the f32 kernel itself.
 * Scratch: attentionKvScratch(pos0 + nTok, headDim, nHead / nKvHead, nTok).
 */
export function attentionKv(q: usize, dtK: i32, k: usize, ks: usize, dtV: i32, v: usize, vs: usize, out: usize, nTok: i32,
  pos0: i32, nHead: i32, nKvHead: i32, headDim: i32, scale: f32, scratch: usize, simd: bool): void {
  if (dtK == DT_F32 && dtV == DT_F32) {
    attention(q, k, v, out, nTok, pos0, nHead, nKvHead, headDim, scale, scratch, simd);
    return;
  }
  const group = nHead / nKvHead;
  const qStride = nHead * headDim;
  const kvStride = nKvHead * headDim;
  const nCtx = pos0 + nTok;
  const tb = tokenBlock(nCtx, group, nTok);
  const scoreBytes = <usize>(scoreStride(nCtx) << 2); // query (t - t0, g) at scratch + ((t - t0) * group + g) * scoreBytes
  const act = scratch + <usize>align64(tb * group * <i32>scoreBytes);
  const vrows = act + <usize>align64(headActBytes(headDim, group));
  const headBytes = <usize>headDim << 2;
  if (simd) { // each kv head's pass below reads a slice of every row: the rows in address order first (warmRows)
    warmRows(k, <usize>rowBytes(dtK, nCtx * kvStride));
    if (dtK != DT_F16 && dtK != DT_F32) warmRows(ks, <usize>(nCtx * kvStride / QK) << 2);
  }
  for (let t0 = 0; t0 < nTok; t0 += tb) {
    const t1 = min(t0 + tb, nTok);
    for (let kh = 0; kh < nKvHead; kh++) {
      const col = kh * headDim; // first column of this kv head in a cache row
      if (simd && dtK == DT_F16) f16KeyScores(q, out, k, kvStride, kh, t0, t1, pos0, qStride, vrows, headDim, group, scale, scratch, scoreBytes);
      else for (let t = t0; t < t1; t++) {
        for (let g = 0; g < group; g++) {
          const scores = scratch + <usize>((t - t0) * group + g) * scoreBytes;
          const qg = q + headAt(t, qStride, kh * group + g, headDim);
          if (simd && dtK == DT_Q8_0 && g + 1 < group) { // heads g, g + 1 from one load of each key vector
            const qBytes = <usize>actBytes(DT_Q8_0, headDim);
            prepare(dtK, qg, 2, headDim, act, <i32>qBytes, simd);
            q8KeyScores2(k, ks, kvStride, col, act, act + qBytes, headDim, pos0 + t + 1, scale, scores, scores + scoreBytes);
            g++;
            continue;
          }
          prepare(dtK, qg, 1, headDim, act, 0, simd);
          keyScores(dtK, k, ks, kvStride, col, act, headDim, pos0 + t + 1, scale, scores, simd);
        }
      }
      for (let t = t0; t < t1; t++) {
        // after the block's q rows of this kv head were prepared: out may alias q (the group's heads are adjacent)
        memory.fill(out + headAt(t, qStride, kh * group, headDim), 0, <usize>group * headBytes);
      }
      if (simd && kh == 0 && t0 == 0) {
        warmRows(v, <usize>rowBytes(dtV, nCtx * kvStride));
        if (dtV != DT_F16 && dtV != DT_F32) warmRows(vs, <usize>(nCtx * kvStride / QK) << 2);
      }
      if (simd && dtV == DT_Q8_0 && t1 - t0 == 1 && (group & 1) == 0) { // one query: each value row read for a head pair
        q8Values2(v, vs, kvStride, col, out + headAt(t0, qStride, kh * group, headDim), scratch, scoreBytes, vrows, headDim, group, pos0 + t0 + 1);
        continue;
      }
      for (let j0 = 0; j0 < pos0 + t1; j0 += V_BLOCK) {
        const j1 = min(j0 + V_BLOCK, pos0 + t1);
        vRows(dtV, v, vs, j0, j1, kvStride, col, headDim, vrows);
        for (let t = max(t0, j0 - pos0); t < t1; t++) { // the queries that see position j0
          const end = min(j1, pos0 + t + 1);
          for (let g = 0; g < group; g++) {
            const o = out + headAt(t, qStride, kh * group + g, headDim);
            const p = scratch + <usize>((t - t0) * group + g) * scoreBytes;
            const pair = simd && (headDim & 3) == 0 && g + 1 < group; // heads g, g + 1 from one load of each value vector
            let j = j0;
            for (; j + 4 <= end; j += 4) {
              const vr = vrows + <usize>(j - j0) * headBytes;
              if (pair) axpy4x2(o, o + headBytes, vr, headBytes, p + (<usize>j << 2), p + scoreBytes + (<usize>j << 2), headDim);
              else axpy4(o, vr, headBytes, p + (<usize>j << 2), headDim, simd);
            }
            for (; j < end; j++) {
              axpy(o, vrows + <usize>(j - j0) * headBytes, load<f32>(p + (<usize>j << 2)), headDim, simd);
              if (pair) axpy(o + headBytes, vrows + <usize>(j - j0) * headBytes, load<f32>(p + scoreBytes + (<usize>j << 2)), headDim, simd);
            }
            if (pair) g++;
          }
        }
      }
    }
  }
}

/** scores (n) = softmax(q . k_j * scale) over positions j < n of one kv head (column col), q prepared at `act`. */
function keyScores(dtK: i32, k: usize, ks: usize, kvStride: i32, col: i32, act: usize, headDim: i32, n: i32, scale: f32, scores: usize, simd: bool): void {
  let j = 0;
  if (simd && (dtK == DT_Q8_0 || dtK == DT_Q4_0)) {
    // four keys per call, the query's prepared blocks loaded once for them (each value is dotRow's)
    const off = <usize>rowBytes(dtK, kvStride), soff = <usize>(kvStride / QK) << 2;
    for (; j + 4 <= n; j += 4) {
      const at = j * kvStride + col;
      const y = scores + (<usize>j << 2);
      if (dtK == DT_Q8_0) dot4RowsQ8Simd(k + <usize>rowBytes(dtK, at), ks + (<usize>(at / QK) << 2), off, soff, act, headDim, y, 4);
      else dot4RowsQ4Simd(k + <usize>rowBytes(dtK, at), ks + (<usize>(at / QK) << 2), off, soff, act, headDim, y, 4);
      v128.store(y, f32x4.mul(v128.load(y), f32x4.splat(scale)));
    }
  }
  for (; j < n; j++) {
    const at = j * kvStride + col;
    const s = dotRow(dtK, k + <usize>rowBytes(dtK, at), ks + (<usize>(at / QK) << 2), act, headDim, simd);
    store<f32>(scores + (<usize>j << 2), s * scale);
  }
  softmaxScores(scores, n);
}

/**
 * keyScores for two query heads of one KV head over a q8_0 cache, their queries prepared at actA, actB: four keys
 * a step (keys4x2Q8), the last n % 4 by dotRow; the same values as keyScores for each head.
 */
function q8KeyScores2(k: usize, ks: usize, kvStride: i32, col: i32, actA: usize, actB: usize, headDim: i32, n: i32, scale: f32, sA: usize, sB: usize): void {
  const off = <usize>kvStride, soff = <usize>(kvStride / QK) << 2;
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const at = j * kvStride + col;
    keys4x2Q8(k + <usize>at, ks + (<usize>(at / QK) << 2), off, soff, actA, actB, headDim, scale, sA + (<usize>j << 2), sB + (<usize>j << 2));
  }
  for (; j < n; j++) {
    const at = j * kvStride + col;
    store<f32>(sA + (<usize>j << 2), dotRow(DT_Q8_0, k + <usize>at, ks + (<usize>(at / QK) << 2), actA, headDim, true) * scale);
    store<f32>(sB + (<usize>j << 2), dotRow(DT_Q8_0, k + <usize>at, ks + (<usize>(at / QK) << 2), actB, headDim, true) * scale);
  }
  softmaxScores(sA, n);
  softmaxScores(sB, n);
}

/**
 * One query token's value sums over a q8_0 cache for the `group` heads of one KV head (group even, their outputs
 * adjacent at o, zeroed; head g's probabilities at p + g * scoreBytes): two heads per pass, four positions a step
 * dequantized in registers (values4x2Q8), the last n % 4 through `rows` as the generic loop does (vHead, axpy).
 */
function q8Values2(v: usize, vs: usize, kvStride: i32, col: i32, o: usize, p: usize, scoreBytes: usize, rows: usize, headDim: i32, group: i32, n: i32): void {
  const off = <usize>kvStride, soff = <usize>(kvStride / QK) << 2, headBytes = <usize>headDim << 2;
  for (let g = 0; g < group; g += 2) {
    const oA = o + <usize>g * headBytes, pA = p + <usize>g * scoreBytes;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const at = j * kvStride + col;
      values4x2Q8(oA, oA + headBytes, v + <usize>at, vs + (<usize>(at / QK) << 2), off, soff, pA + (<usize>j << 2), pA + scoreBytes + (<usize>j << 2), headDim);
    }
    for (; j < n; j++) {
      vHead(DT_Q8_0, v, vs, j * kvStride + col, headDim, rows);
      axpy(oA, rows, load<f32>(pA + (<usize>j << 2)), headDim, true);
      axpy(oA + headBytes, rows, load<f32>(pA + scoreBytes + (<usize>j << 2)), headDim, true);
    }
  }
}

/**
 * Scores of a token block's queries t0..t1 - 1 for kv head kh over an f16 cache (softmaxed): each V_BLOCK of key rows is
 * widened exactly once (to `rows`) for every query of the block that sees it, where widening them per query made a
 * long prompt's prefill widen O(n^2) rows (1,024 tokens: 0.89x llama.cpp's prefill with f16 caches against 1.12x with
 * f32). The queries, rounded to f16 as ggml's F16 matmul rounds its input, are prepared into their own rows of `out`
 * (the V pass clears them after), so the block needs no scratch of its own. Each score is dot4Simd's (dotF32Simd's for
 * the last n % 4 positions), as one query at a time.
 */
function f16KeyScores(q: usize, out: usize, k: usize, kvStride: i32, kh: i32, t0: i32, t1: i32, pos0: i32, qStride: i32,
  rows: usize, headDim: i32, group: i32, scale: f32, scratch: usize, scoreBytes: usize): void {
  const headBytes = <usize>headDim << 2, col = kh * headDim;
  for (let t = t0; t < t1; t++) for (let g = 0; g < group; g++) {
    const at = headAt(t, qStride, kh * group + g, headDim);
    prepare(DT_F16, q + at, 1, headDim, out + at, 0, true);
  }
  for (let j0 = 0; j0 < pos0 + t1; j0 += V_BLOCK) {
    const j1 = min(j0 + V_BLOCK, pos0 + t1);
    vRows(DT_F16, k, 0, j0, j1, kvStride, col, headDim, rows);
    for (let t = max(t0, j0 - pos0); t < t1; t++) { // the queries that see position j0
      const end = min(j1, pos0 + t + 1);
      for (let g = 0; g < group; g++) {
        const qa = out + headAt(t, qStride, kh * group + g, headDim), sg = scratch + <usize>((t - t0) * group + g) * scoreBytes;
        const pair = (headDim & 3) == 0 && g + 1 < group; // heads g, g + 1 from one load of each key vector
        let j = j0;
        for (; j + 4 <= end; j += 4) {
          const kr = rows + <usize>(j - j0) * headBytes, s = sg + (<usize>j << 2);
          if (pair) dot4x2Simd(qa, qa + headBytes, kr, headBytes, headDim, scale, s, s + scoreBytes);
          else dot4Simd(qa, kr, headBytes, headDim, scale, s);
        }
        for (; j < end; j++) {
          const kr = rows + <usize>(j - j0) * headBytes;
          store<f32>(sg + (<usize>j << 2), dotF32Simd(qa, kr, headDim) * scale);
          if (pair) store<f32>(sg + scoreBytes + (<usize>j << 2), dotF32Simd(qa + headBytes, kr, headDim) * scale);
        }
        if (pair) g++;
      }
    }
  }
  for (let t = t0; t < t1; t++) for (let g = 0; g < group; g++) softmaxScores(scratch + <usize>((t - t0) * group + g) * scoreBytes, pos0 + t + 1);
}

/** Byte offset of query head h of token t in a (nTok, nHead * headDim) f32 matrix of qStride columns. */
@inline function headAt(t: i32, qStride: i32, h: i32, headDim: i32): usize {
  return <usize>(t * qStride + h * headDim) << 2;
}

/** Positions j0..j1 - 1 of the KV head at column col, dequantized (vHead) into rows of headDim f32 at out. */
@inline function vRows(dt: i32, v: usize, vs: usize, j0: i32, j1: i32, kvStride: i32, col: i32, headDim: i32, out: usize): void {
  if (dt == DT_F16) widenRowsF16(v + (<usize>(j0 * kvStride + col) << 1), <usize>kvStride << 1, out, j1 - j0, headDim);
  else for (let j = j0; j < j1; j++) vHead(dt, v, vs, j * kvStride + col, headDim, out + (<usize>((j - j0) * headDim) << 2));
}

/** out (headDim) f32 = the cache's elements at..at+headDim-1 (one head of one position), dequantized exactly. */
@inline function vHead(dt: i32, v: usize, vs: usize, at: i32, headDim: i32, out: usize): void {
  getRow(dt, v + <usize>rowBytes(dt, at), vs + (<usize>(at / QK) << 2), headDim, 0, out);
}

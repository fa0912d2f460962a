// O(n) kernels with a single version: embedding row lookup (SIMD where the values cannot differ from the scalar
// definition: it dequantizes every V row attention reads), RMSNorm, RoPE, softmax, top-k, add-scaled. Their cost is
// small next to the matmuls, so they have no SIMD twin.
import { QK, DT_F32, DT_F16, DT_Q8_0, DT_Q4_0X4, DT_Q8_0X4, rowBytes, f16Const, f16ToF32, f16x4ToF32x4, f16x8Const, finiteF16x4ToF32x4 } from './common';
import { packedByte, packedScale, rowOffQ4x4, groupStrideQ4x4 } from './dot-q4x4';
import { packedByteQ8 } from './dot-q8x4';
import { eightI8, nibbleMask } from './simd-util';

/**
 * dst (f32) = the first n - n % 8 f16 values at src, widened exactly; returns that count. Finite values (all of them,
 * unless a cache row overflowed f16) take finiteF16x4ToF32x4, checked eight at a time; if any value was inf or nan the
 * row is widened again with f16x4ToF32x4. Attention's f16 K and V rows: decode attention over an f16 cache 1.2x.
 */
@inline function widenF16x8(src: usize, dst: usize, n: i32): i32 {
  const c0 = f16x8Const(0), c1 = f16x8Const(1), c2 = f16x8Const(2), magic = f16Const(4);
  let special = i16x8.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h8 = v128.load(src + (<usize>i << 1));
    special = v128.or(special, i16x8.gt_s(v128.and(h8, c0), c1));
    const o = dst + (<usize>i << 2);
    v128.store(o, finiteF16x4ToF32x4(i32x4.extend_low_i16x8_s(h8), c2, magic));
    v128.store(o, finiteF16x4ToF32x4(i32x4.extend_high_i16x8_s(h8), c2, magic), 16);
  }
  if (v128.any_true(special)) widenF16x8Special(src, dst, i);
  return i;
}

/** widenF16x8 of a row that holds inf or nan: every value through f16x4ToF32x4. */
function widenF16x8Special(src: usize, dst: usize, n: i32): void {
  const c0 = f16Const(0), c1 = f16Const(1), c2 = f16Const(2), c3 = f16Const(3), c4 = f16Const(4);
  for (let i = 0; i < n; i += 8) {
    const h8 = v128.load(src + (<usize>i << 1));
    const o = dst + (<usize>i << 2);
    v128.store(o, f16x4ToF32x4(i32x4.extend_low_i16x8_u(h8), c0, c1, c2, c3, c4));
    v128.store(o, f16x4ToF32x4(i32x4.extend_high_i16x8_u(h8), c0, c1, c2, c3, c4), 16);
  }
}

/**
 * n rows of cols f16 values, srcStride bytes apart from src, widened into dst (n rows of cols f32, packed): getRow's
 * values in one call for a block of rows, where a call per row (attention's f16 K and V, 64 values a row at granite's
 * shape) spent a tenth of its time on calls.
 */
export function widenRowsF16(src: usize, srcStride: usize, dst: usize, n: i32, cols: i32): void {
  for (let r = 0; r < n; r++) {
    const s = src + <usize>r * srcStride, d = dst + (<usize>(r * cols) << 2);
    const i = widenF16x8(s, d, cols);
    for (let j = i; j < cols; j++) store<f32>(d + (<usize>j << 2), f16ToF32(load<u16>(s + (<usize>j << 1))));
  }
}

/**
 * out (cols) = row `row` of W, dequantized: q * d (one f32 product per element, the same in every lane order) and
 * f16 widened exactly, so the SIMD loops below give the scalar definition's values. Attention reads V through it.
 */
export function getRow(dt: i32, data: usize, scales: usize, cols: i32, row: i32, out: usize): void {
  if (dt == DT_Q4_0X4 || dt == DT_Q8_0X4) unreachable(); // a packed row is its matrix's: getRowQ4x4, getRowQ8x4
  const w = data + <usize>row * <usize>rowBytes(dt, cols);
  if (dt == DT_F32) { memory.copy(out, w, <usize>cols << 2); return; }
  if (dt == DT_F16) { widenRowsF16(w, 0, out, 1, cols); return; }
  const nb = cols / QK;
  const s = scales + (<usize>(row * nb) << 2);
  for (let b = 0; b < nb; b++) {
    const ds = load<f32>(s + (<usize>b << 2));
    const d = f32x4.splat(ds);
    const o = out + (<usize>(b * QK) << 2);
    if (dt == DT_Q8_0) {
      const p = w + <usize>(b * QK);
      store16(o, v128.load(p), d);
      store16(o + 64, v128.load(p, 16), d);
    } else {
      // byte j holds element j (low nibble) and element j + 16 (high nibble)
      const v = v128.load(w + <usize>(b * 16));
      const m = nibbleMask(), eight = eightI8();
      store16(o, i8x16.sub(v128.and(v, m), eight), d);
      store16(o + 64, i8x16.sub(v128.and(i16x8.shr_u(v, 4), m), eight), d);
    }
  }
}

/** getRow for a packed q4_0 matrix (rows x cols, dot-q4x4.ts): the same values, each byte where the packing put it. */
export function getRowQ4x4(data: usize, scales: usize, rows: i32, cols: i32, row: i32, out: usize): void {
  const o = rowOffQ4x4(row, rows, cols), gs = groupStrideQ4x4(row, rows, cols);
  const w = data + o, s = scales + (o >> 2);
  const nb = cols / QK, groups = nb >> 2;
  for (let b = 0; b < nb; b++) {
    const ds = packedScale(s, gs, b);
    const p = out + (<usize>(b * QK) << 2);
    for (let j = 0; j < 16; j++) {
      const byte = packedByte(w, gs, b, j, groups);
      store<f32>(p + (<usize>j << 2), <f32>((byte & 0x0f) - 8) * ds);
      store<f32>(p + (<usize>(j + 16) << 2), <f32>((byte >> 4) - 8) * ds);
    }
  }
}

/** getRow for a packed q8_0 matrix (dot-q8x4.ts): the same values, each byte where the packing put it. */
export function getRowQ8x4(data: usize, scales: usize, cols: i32, row: i32, out: usize): void {
  const w = data + <usize>row * <usize>cols, s = scales + (<usize>row * <usize>cols >> 3);
  const nb = cols / QK, groups = nb >> 2;
  for (let b = 0; b < nb; b++) {
    const ds = load<f32>(s + (<usize>b << 2));
    const p = out + (<usize>(b * QK) << 2);
    for (let j = 0; j < QK; j++) store<f32>(p + (<usize>j << 2), <f32>packedByteQ8(w, b, j, groups) * ds);
  }
}

/** out[0..15] = the 16 signed bytes of q, each times d (f32x4 splat). */
@inline function store16(out: usize, q: v128, d: v128): void {
  const lo = i16x8.extend_low_i8x16_s(q), hi = i16x8.extend_high_i8x16_s(q);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), d));
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), d), 16);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), d), 32);
  v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), d), 48);
}

/** out (nTok, n) = x / sqrt(mean(x^2) + eps) * w; squares summed in f64 as ggml_compute_forward_rms_norm. */
export function rmsNorm(x: usize, w: usize, out: usize, n: i32, nTok: i32, eps: f32): void {
  for (let t = 0; t < nTok; t++) {
    const xr = x + (<usize>(t * n) << 2);
    const or = out + (<usize>(t * n) << 2);
    let sum: f64 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(xr + (<usize>i << 2));
      sum += <f64>(v * v);
    }
    const mean = <f32>(sum / <f64>n);
    const scale: f32 = <f32>1 / Mathf.sqrt(mean + eps);
    for (let i = 0; i < n; i++) {
      const at = <usize>i << 2;
      store<f32>(or + at, (load<f32>(xr + at) * scale) * load<f32>(w + at));
    }
  }
}

/**
 * In place: x (nTok, nHeads*headDim), token t at position pos0 + t. Rotates the first rotDims of each head by
 * theta_i = pos * base^(-2i/rotDims), computed in f64. layout 0 = neox (pairs i, i + rotDims/2), 1 = interleaved
 * (pairs 2i, 2i+1).
 */
export function rope(x: usize, nTok: i32, nHeads: i32, headDim: i32, rotDims: i32, pos0: i32, base: f64, layout: i32): void {
  const half = rotDims >> 1;
  for (let t = 0; t < nTok; t++) {
    const pos = <f64>(pos0 + t);
    const row = x + (<usize>(t * nHeads * headDim) << 2);
    for (let i = 0; i < half; i++) {
      const theta = pos * Math.pow(base, -2.0 * <f64>i / <f64>rotDims);
      const c = <f32>Math.cos(theta);
      const s = <f32>Math.sin(theta);
      const i0 = layout == 0 ? i : 2 * i;
      const i1 = layout == 0 ? i + half : 2 * i + 1;
      for (let h = 0; h < nHeads; h++) {
        const p0 = row + (<usize>(h * headDim + i0) << 2);
        const p1 = row + (<usize>(h * headDim + i1) << 2);
        const a = load<f32>(p0);
        const b = load<f32>(p1);
        store<f32>(p0, a * c - b * s);
        store<f32>(p1, a * s + b * c);
      }
    }
  }
}

/** In place, per row of n: exp(x - max) / sum, the sum in f64 (ggml's soft_max). */
export function softmax(x: usize, n: i32, rows: i32): void {
  for (let r = 0; r < rows; r++) {
    const p = x + (<usize>(r * n) << 2);
    let mx = -Infinity as f32;
    for (let i = 0; i < n; i++) mx = max<f32>(mx, load<f32>(p + (<usize>i << 2)));
    let sum: f64 = 0;
    for (let i = 0; i < n; i++) {
      const e = Mathf.exp(load<f32>(p + (<usize>i << 2)) - mx);
      store<f32>(p + (<usize>i << 2), e);
      sum += <f64>e;
    }
    const inv = <f32>(1.0 / sum);
    for (let i = 0; i < n; i++) store<f32>(p + (<usize>i << 2), load<f32>(p + (<usize>i << 2)) * inv);
  }
}

/**
 * The k largest of x (n floats), descending, ties by lower index: k selection passes, each taking the best
 * element that comes after the previous pick in that order. O(n k) and no scratch; n is an expert count.
 */
export function topK(x: usize, n: i32, k: i32, outIdx: usize, outVal: usize): void {
  let prevV: f32 = Infinity;
  let prevI = -1;
  for (let m = 0; m < k; m++) {
    let bi = -1;
    let bv: f32 = 0;
    for (let i = 0; i < n; i++) {
      const v = load<f32>(x + (<usize>i << 2));
      const after = v < prevV || (v == prevV && i > prevI);
      if (after && (bi < 0 || v > bv)) { bi = i; bv = v; }
    }
    store<i32>(outIdx + (<usize>m << 2), bi);
    store<f32>(outVal + (<usize>m << 2), bv);
    prevV = bv;
    prevI = bi;
  }
}

/** a (n) += s * b (n). */
export function addScaled(a: usize, b: usize, s: f32, n: i32): void {
  for (let i = 0; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(a + at, load<f32>(a + at) + s * load<f32>(b + at));
  }
}

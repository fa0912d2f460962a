// WGSL sources of the trunk's activation kernels (RMSNorm, RoPE, causal GQA attention over a KV cache of any type,
// softmax, top-k, element-wise adds and scaling): what the webgpu device needs beside the matmuls of wgsl.ts.
//
// Every kernel binds whole buffers of f32 (or u32) and takes element offsets in its parameters, so one buffer can
// hold many tensors (a KV cache, a chunk's rows at position pos0) without WebGPU's 256-byte binding alignment.
// A writable binding may not alias another binding of the same dispatch, so in-place forms (out == x) are their own
// variants with a single read_write binding. Semantics are those of src/kernels/types.ts, tolerances those of the
// conformance suite (test/unit/kernels/cases-ops.ts).
import { QK, type DType } from '../../../src/format/quant';
import { DIV_RN, EXP, F16_TO_F32, ROUND_F16 } from './wgsl';
import { QUANTIZE_QUERY, cacheReaders } from './wgsl-kv';

/** Threads of a row-reduction workgroup (rmsNorm, softmax, topK): the compatibility-mode cap, a power of two. */
export const ROW_WG = 128;
/** Threads of an attention workgroup, and keys per tile: one (token, head) per workgroup. */
export const ATTN_WG = 64;
/** Largest head the attention kernel holds (ATTN_WG threads x 4 output dims each). */
export const MAX_HEAD_DIM = 4 * ATTN_WG;
/** Threads of an element-wise workgroup. */
export const ELEM_WG = 64;

/** Item (row or element) index of a job spread over a 2-D grid (a dimension holds at most 65535 workgroups). */
const ROW_INDEX = 'wg.y * nwg.x + wg.x';
const ENTRY = '@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32';

/** Tree reduction of red[0..ROW_WG) into red[0] with `op`; every thread of the workgroup must call it. */
function reduce(size: number, op: (a: string, b: string) => string): string {
  return `
  workgroupBarrier();
  for (var s = ${size / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = ${op('red[li]', 'red[li + s]')}; }
    workgroupBarrier();
  }`;
}

/**
 * out (rows, n) = x / sqrt(mean(x^2) + eps) * w, one workgroup per row. The sum of squares is a tree of f32
 * partial sums (log2 depth: well inside the 1e-5 the suite allows against a double sum). `shared`: out lies in
 * x's buffer (in place, or rows that do not overlap x's).
 */
export function rmsNormShader(shared: boolean): string {
  const io = shared
    ? `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;`
    : `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;`;
  const dst = shared ? 'x' : 'out';
  return `struct Params { n: u32, rows: u32, xOff: u32, wOff: u32, outOff: u32, eps: f32 }
${io}
var<workgroup> red: array<f32, ${ROW_WG}>;

@compute @workgroup_size(${ROW_WG})
fn main(${ENTRY}) {
  let row = ${ROW_INDEX};
  if (row >= p.rows) { return; } // the same for the whole workgroup
  let xo = p.xOff + row * p.n;
  var s = 0.0;
  for (var i = li; i < p.n; i = i + ${ROW_WG}u) { let v = x[xo + i]; s = s + v * v; }
  red[li] = s;${reduce(ROW_WG, (a, b) => `${a} + ${b}`)}
  let scale = 1.0 / sqrt(red[0] / f32(p.n) + p.eps);
  let oo = p.outOff + row * p.n;
  for (var i = li; i < p.n; i = i + ${ROW_WG}u) { ${dst}[oo + i] = (x[xo + i] * scale) * w[p.wOff + i]; }
}
`;
}

/**
 * In-place rotary embedding, one thread per rotated pair. cos/sin come from a table (see rope-table.ts), as
 * vLLM's cos_sin_cache: WGSL's sin/cos only promise 2^-11 absolute error on [-pi, pi] (and nothing outside it),
 * far from the suite's few 1e-6 at positions in the thousands.
 * Table layout: for position q and pair i, tab[(q * half + i) * 2] = cos, + 1 = sin.
 */
export function ropeShader(): string {
  return `struct Params { nTok: u32, nHeads: u32, headDim: u32, half: u32, xOff: u32, pos0: u32, neox: u32, count: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> tab: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${ELEM_WG})
fn main(${ENTRY}) {
  let idx = (${ROW_INDEX}) * ${ELEM_WG}u + li;
  if (idx >= p.count) { return; }
  let i = idx % p.half;
  let th = idx / p.half; // token * nHeads + head
  let t = th / p.nHeads;
  let o = p.xOff + th * p.headDim;
  let ia = select(o + 2u * i, o + i, p.neox == 1u);
  let ib = select(o + 2u * i + 1u, o + i + p.half, p.neox == 1u);
  let at = ((p.pos0 + t) * p.half + i) * 2u;
  let c = tab[at];
  let s = tab[at + 1u];
  let a = x[ia];
  let b = x[ib];
  x[ia] = a * c - b * s;
  x[ib] = a * s + b * c;
}
`;
}

/**
 * Causal GQA attention over a KV cache of `dtype` (wgsl-kv.ts), one workgroup per (query token, head), flash-style:
 * keys in tiles of ATTN_WG positions (one per thread: the q.k dot), a running max and sum rescaled per tile (exp
 * within 1 ulp, as the FFN's silu), each thread accumulating up to 4 of the head's output dims over the tile's V
 * rows. As ggml's CPU flash attention (and ts-ref): the query is converted to K's dot input (f16: rounded; q8_0 /
 * q4_0: quantized to q8_0 per 32-block, integer block dots scaled by dk * dq), V rows are dequantized exactly.
 * Token t (position pos0 + t) reads cache rows 0..pos0+t and nothing past them.
 */
export function attentionShader(dtype: DType): string {
  const dims = MAX_HEAD_DIM / ATTN_WG;
  const quantized = dtype === 'q8_0' || dtype === 'q4_0';
  const cacheType = dtype === 'f32' ? 'array<f32>' : 'array<u32>';
  const loadQ = dtype === 'f16' ? 'round_f16(q[p.qOff + qo + d])' : 'q[p.qOff + qo + d]';
  const score = quantized
    ? `let blk0 = (p.kOff + j * kvStride + kvo) / ${QK}u;
      var dot = 0.0;
      for (var b = 0u; b < hd / ${QK}u; b = b + 1u) {
        let dk = bitcast<f32>(k[p.kScales + blk0 + b]);
        dot = dot + f32(k_block_dot(blk0 + b, b)) * (dk * qd[b]);
      }`
    : `let ko = p.kOff + j * kvStride + kvo;
      var dot = 0.0;
      for (var d = 0u; d < hd; d = d + 1u) { dot = dot + qs[d] * k_at(ko + d); }`;
  return `struct Params { nTok: u32, pos0: u32, nHead: u32, nKvHead: u32, headDim: u32, qOff: u32, kOff: u32, vOff: u32, outOff: u32, scale: f32, kScales: u32, vScales: u32 }
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: ${cacheType};
@group(0) @binding(2) var<storage, read> v: ${cacheType};
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
var<workgroup> qs: array<f32, ${MAX_HEAD_DIM}>;
var<workgroup> ps: array<f32, ${ATTN_WG}>;
var<workgroup> red: array<f32, ${ATTN_WG}>;
${quantized ? `var<workgroup> qq: array<i32, ${MAX_HEAD_DIM}>;
var<workgroup> qd: array<f32, ${MAX_HEAD_DIM / QK}>;` : ''}
${EXP}${dtype === 'f32' ? '' : F16_TO_F32 + ROUND_F16}${quantized ? DIV_RN : ''}
${cacheReaders(dtype)}
const NONE = -3.4028234663852886e38; // below every score: the max of a tile with no key, and the start of the running max

@compute @workgroup_size(${ATTN_WG})
fn main(${ENTRY}) {
  let id = ${ROW_INDEX};
  if (id >= p.nTok * p.nHead) { return; } // the same for the whole workgroup
  let t = id / p.nHead;
  let h = id % p.nHead;
  let hd = p.headDim;
  let kvo = (h / (p.nHead / p.nKvHead)) * hd;
  let kvStride = p.nKvHead * hd;
  let qo = t * p.nHead * hd + h * hd;
  for (var d = li; d < hd; d = d + ${ATTN_WG}u) { qs[d] = ${loadQ}; }
  workgroupBarrier();${quantized ? QUANTIZE_QUERY : ''}
  let last = p.pos0 + t; // the last position this query sees
  var m = NONE;
  var l = 0.0;
  var acc: array<f32, ${dims}>;
  for (var j0 = 0u; j0 <= last; j0 = j0 + ${ATTN_WG}u) {
    let j = j0 + li;
    let valid = j <= last;
    var sc = NONE;
    if (valid) {
      ${score}
      sc = dot * p.scale;
    }
    red[li] = sc;${reduce(ATTN_WG, (a, b) => `max(${a}, ${b})`)}
    let mNew = max(m, red[0]);
    let pj = select(0.0, exp_acc(sc - mNew), valid);
    workgroupBarrier(); // everyone has read red[0]
    ps[li] = pj;
    red[li] = pj;${reduce(ATTN_WG, (a, b) => `${a} + ${b}`)}
    let alpha = exp_acc(m - mNew); // 0 on the first tile (m = NONE)
    l = l * alpha + red[0];
    let n = min(${ATTN_WG}u, last + 1u - j0);
    for (var c = 0u; c < ${dims}u; c = c + 1u) {
      let d = li + c * ${ATTN_WG}u;
      if (d < hd) {
        var s = 0.0;
        for (var jj = 0u; jj < n; jj = jj + 1u) { s = s + ps[jj] * v_at(p.vOff + (j0 + jj) * kvStride + kvo + d); }
        acc[c] = acc[c] * alpha + s;
      }
    }
    m = mNew;
    workgroupBarrier(); // ps and red are rewritten by the next tile
  }
  for (var c = 0u; c < ${dims}u; c = c + 1u) {
    let d = li + c * ${ATTN_WG}u;
    if (d < hd) { out[p.outOff + qo + d] = acc[c] / l; }
  }
}
`;
}

/** In-place softmax of each of `rows` rows of n floats (max-subtracted), one workgroup per row. */
export function softmaxShader(): string {
  return `struct Params { n: u32, rows: u32, off: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
var<workgroup> red: array<f32, ${ROW_WG}>;
${EXP}
@compute @workgroup_size(${ROW_WG})
fn main(${ENTRY}) {
  let row = ${ROW_INDEX};
  if (row >= p.rows) { return; }
  let o = p.off + row * p.n;
  var m = -3.4028234663852886e38;
  for (var i = li; i < p.n; i = i + ${ROW_WG}u) { m = max(m, x[o + i]); }
  red[li] = m;${reduce(ROW_WG, (a, b) => `max(${a}, ${b})`)}
  let mx = red[0];
  workgroupBarrier();
  var s = 0.0;
  for (var i = li; i < p.n; i = i + ${ROW_WG}u) { let e = exp_acc(x[o + i] - mx); x[o + i] = e; s = s + e; }
  red[li] = s;${reduce(ROW_WG, (a, b) => `${a} + ${b}`)}
  let sum = red[0];
  for (var i = li; i < p.n; i = i + ${ROW_WG}u) { x[o + i] = x[o + i] / sum; }
}
`;
}

/**
 * The k largest of each row of n floats, descending, ties lower index first: each element's rank is the number of
 * elements that come before it in that order, and ranks below k are written. O(n^2) per row: n is a router's
 * expert count (<= a few hundred). Values are copied as bits (exact, whatever the GPU does with subnormals).
 */
export function topKShader(): string {
  return `struct Params { n: u32, k: u32, rows: u32, xOff: u32, idxOff: u32, valOff: u32 }
@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> val: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(${ROW_WG})
fn main(${ENTRY}) {
  let row = ${ROW_INDEX};
  if (row >= p.rows) { return; }
  let o = p.xOff + row * p.n;
  for (var i = li; i < p.n; i = i + ${ROW_WG}u) {
    let xi = bitcast<f32>(x[o + i]);
    var rank = 0u;
    for (var j = 0u; j < p.n && rank < p.k; j = j + 1u) {
      let xj = bitcast<f32>(x[o + j]);
      if (xj > xi || (xj == xi && j < i)) { rank = rank + 1u; }
    }
    if (rank < p.k) {
      idx[p.idxOff + row * p.k + rank] = i;
      val[p.valOff + row * p.k + rank] = x[o + i];
    }
  }
}
`;
}

/**
 * a[aOff + i] += s * b[bOff + i % bLen] for i < count: a residual add (bLen = count, s = granite's residual
 * multiplier) or a bias added to every row (bLen = the row length). `same`: b lies in a's buffer.
 */
export function addScaledShader(same: boolean): string {
  const io = same
    ? `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;`
    : `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;`;
  return `struct Params { count: u32, bLen: u32, aOff: u32, bOff: u32, s: f32 }
${io}
@compute @workgroup_size(${ELEM_WG})
fn main(${ENTRY}) {
  let i = (${ROW_INDEX}) * ${ELEM_WG}u + li;
  if (i < p.count) { a[p.aOff + i] = a[p.aOff + i] + p.s * ${same ? 'a' : 'b'}[p.bOff + i % p.bLen]; }
}
`;
}

/** x[off + i] *= s for i < count (the embedding multiplier). */
export function scaleShader(): string {
  return `struct Params { count: u32, off: u32, s: f32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
@compute @workgroup_size(${ELEM_WG})
fn main(${ENTRY}) {
  let i = (${ROW_INDEX}) * ${ELEM_WG}u + li;
  if (i < p.count) { x[p.off + i] = x[p.off + i] * p.s; }
}
`;
}

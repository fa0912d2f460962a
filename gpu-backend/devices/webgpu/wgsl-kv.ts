// The KV cache in every type the Worker offers (f32, f16, q8_0, q4_0) on the GPU: its buffer layout, the storeRows
// kernels that write a chunk's f32 keys/values into it exactly as src/format/quant.ts does (ggml's cache writes),
// and the WGSL that attention uses to read it (a key's dot with the query, a value element dequantized).
//
// Layout of one cache buffer of `rows` positions x `cols` values, in u32 words: f32 one value a word; f16 two
// halves a word (element 2i low); q8_0 / q4_0 the quants of quant.ts (q8_0: 4 int8 a word; q4_0: 4 words a
// 32-block, byte j = element j low nibble, j + 16 high), then the scales widened to f32, one per 32-block, from
// word scalesWord(). The same kernel-memory layout as the heap's (src/kernels/types.ts Mat).
import { QK, type DType } from '../../../src/format/quant';
import { DIV_RN, F16_TO_F32, ROUND_F16 } from './wgsl';

/** Words of the quants (or values) of `elements`; the scales follow there. */
export function scalesWord(dtype: DType, elements: number): number {
  return dtype === 'f32' ? elements : dtype === 'f16' ? elements / 2 : dtype === 'q8_0' ? elements / 4 : elements / 8;
}

/** Words of a whole cache buffer of `elements` values. */
export function cacheWords(dtype: DType, elements: number): number {
  return scalesWord(dtype, elements) + (dtype === 'q8_0' || dtype === 'q4_0' ? elements / QK : 0);
}

/** Threads of a storeRows workgroup. */
export const STORE_WG = 64;

/**
 * q4_0's q = min(15, trunc(f32(p + 8.5))) for p = f32(x * id) in [-8, 8], as comparisons of p with exact f32
 * thresholds, so that no compiler can fuse the multiply and the add into one rounding (WGSL allows contraction):
 * threshold n is the least f32 p with f32(p + 8.5) >= n, found here by stepping down from n - 8.5.
 */
function q4Thresholds(): string {
  const f = new Float32Array(1);
  const bits = new Int32Array(f.buffer);
  const below = (v: number) => { f[0] = v; bits[0] += v < 0 ? 1 : -1; return f[0]; }; // the next f32 towards -inf (v != 0)
  const t: string[] = [];
  for (let n = 1; n <= 15; n++) {
    let p = n - 8.5; // an f32: a half-integer in [-7.5, 6.5]
    while (Math.fround(below(p) + 8.5) >= n) p = below(p);
    t.push(String(p));
  }
  return `const Q4_T = array<f32, 15>(${t.join(', ')});
fn q4(p: f32) -> u32 {
  var q = 0u;
  for (var n = 0u; n < 15u; n++) { if (p >= Q4_T[n]) { q = q + 1u; } }
  return q;
}
`;
}

/**
 * dst rows = src (count items) converted into a cache of `dtype`. Items: f16 words (2 values), q8_0/q4_0 blocks.
 * p.srcOff: first source value; p.dst0: first destination word (f16) or block (q8_0/q4_0); p.scales: scalesWord.
 */
export function storeRowsShader(dtype: 'f16' | 'q8_0' | 'q4_0'): string {
  let body: string;
  if (dtype === 'f16') {
    body = `dst[p.dst0 + i] = f16_bits(src[p.srcOff + 2u * i]) | (f16_bits(src[p.srcOff + 2u * i + 1u]) << 16u);`;
  } else if (dtype === 'q8_0') {
    // quant.ts quantizeQ8_0 'activation' (ggml's CPU from_float for a q8_0 cache): d = f16(amax/127), q = roundEven(x * (127/amax))
    body = `let base = p.srcOff + i * ${QK}u;
  var amax = 0.0;
  for (var j = 0u; j < ${QK}u; j++) { amax = max(amax, abs(src[base + j])); }
  let id = select(0.0, div_rn(127.0, amax), amax > 0.0);
  let blk = p.dst0 + i;
  for (var w = 0u; w < ${QK / 4}u; w++) {
    var word = 0u;
    for (var c = 0u; c < 4u; c++) { word = word | ((bitcast<u32>(i32(round(src[base + w * 4u + c] * id))) & 0xffu) << (8u * c)); }
    dst[blk * ${QK / 4}u + w] = word;
  }
  dst[p.scales + blk] = bitcast<u32>(round_f16(div_rn(amax, 127.0)));`;
  } else {
    // quant.ts quantizeQ4_0: max = the value of largest magnitude (first such), d = max / -8, id = 1/d, q = min(15, trunc(x*id + 8.5))
    body = `let base = p.srcOff + i * ${QK}u;
  var amax = 0.0;
  var mx = 0.0;
  for (var j = 0u; j < ${QK}u; j++) { let v = src[base + j]; if (abs(v) > amax) { amax = abs(v); mx = v; } }
  let dv = mx * -0.125;
  var id = 0.0;
  if (dv > 0.0) { id = div_rn(1.0, dv); } else if (dv < 0.0) { id = -div_rn(1.0, -dv); }
  let blk = p.dst0 + i;
  for (var w = 0u; w < 4u; w++) {
    var word = 0u;
    for (var c = 0u; c < 4u; c++) {
      let j = w * 4u + c;
      word = word | ((q4(src[base + j] * id) | (q4(src[base + j + 16u] * id) << 4u)) << (8u * c));
    }
    dst[blk * 4u + w] = word;
  }
  dst[p.scales + blk] = bitcast<u32>(round_f16(dv));`;
  }
  return `${DIV_RN}${F16_TO_F32}${ROUND_F16}${dtype === 'q4_0' ? q4Thresholds() : ''}
struct Params { count: u32, srcOff: u32, dst0: u32, scales: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(${STORE_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * nwg.x + wg.x) * ${STORE_WG}u + li;
  if (i >= p.count) { return; }
  ${body}
}
`;
}

/**
 * WGSL for attention over a cache of `dtype` bound as `k` and `v`: `v_at(e)` (value element e, dequantized exactly)
 * and the key dot. f32/f16: `k_at(e)`; the query is rounded to f16 first for an f16 cache (ggml's vec_dot_f16).
 * q8_0/q4_0: `k_block_dot(blk, b)` = the integer dot of cache block blk with the query's q8_0 block b (qq).
 */
export function cacheReaders(dtype: DType): string {
  if (dtype === 'f32') return 'fn k_at(e: u32) -> f32 { return k[e]; }\nfn v_at(e: u32) -> f32 { return v[e]; }\n';
  if (dtype === 'f16') {
    return `fn half_at(w: u32, e: u32) -> f32 { return f16_to_f32((w >> ((e & 1u) * 16u)) & 0xffffu); }
fn k_at(e: u32) -> f32 { return half_at(k[e >> 1u], e); }
fn v_at(e: u32) -> f32 { return half_at(v[e >> 1u], e); }
`;
  }
  if (dtype === 'q8_0') {
    return `fn v_at(e: u32) -> f32 {
  let w = bitcast<i32>(v[e >> 2u]);
  return f32(extractBits(w, (e & 3u) * 8u, 8u)) * bitcast<f32>(v[p.vScales + e / ${QK}u]);
}
fn k_block_dot(blk: u32, b: u32) -> i32 {
  var s = 0;
  for (var w = 0u; w < ${QK / 4}u; w++) {
    let x = bitcast<i32>(k[blk * ${QK / 4}u + w]);
    for (var c = 0u; c < 4u; c++) { s = s + extractBits(x, c * 8u, 8u) * qq[b * ${QK}u + w * 4u + c]; }
  }
  return s;
}
`;
  }
  return `fn v_at(e: u32) -> f32 {
  let j = e % ${QK}u;
  let byte = (v[(e / ${QK}u) * 4u + (j % 16u) / 4u] >> ((j % 4u) * 8u)) & 0xffu;
  let n = select(byte & 0x0fu, byte >> 4u, j >= 16u);
  return f32(i32(n) - 8) * bitcast<f32>(v[p.vScales + e / ${QK}u]);
}
fn k_block_dot(blk: u32, b: u32) -> i32 {
  var s = 0;
  for (var w = 0u; w < 4u; w++) {
    let x = k[blk * 4u + w];
    for (var c = 0u; c < 4u; c++) {
      let byte = (x >> (c * 8u)) & 0xffu;
      let j = w * 4u + c;
      s = s + (i32(byte & 0x0fu) - 8) * qq[b * ${QK}u + j] + (i32(byte >> 4u) - 8) * qq[b * ${QK}u + j + 16u];
    }
  }
  return s;
}
`;
}

/** The query head in workgroup memory turned into a quantized key's dot input: q8_0 per 32-block, as quantizeQ8Shader. */
export const QUANTIZE_QUERY = /* wgsl */ `
  if (li < hd / ${QK}u) {
    let base = li * ${QK}u;
    var amax = 0.0;
    for (var j = 0u; j < ${QK}u; j++) { amax = max(amax, abs(qs[base + j])); }
    let id = select(0.0, div_rn(127.0, amax), amax > 0.0);
    for (var j = 0u; j < ${QK}u; j++) { qq[base + j] = i32(round(qs[base + j] * id)); }
    qd[li] = round_f16(div_rn(amax, 127.0));
  }
  workgroupBarrier();
`;

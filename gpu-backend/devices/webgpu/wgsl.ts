// WGSL sources of the WebGPU expert kernels, generated per weight dtype: activation preparation (q8_0 quantization
// exactly as ggml's x86 path, or f16 rounding) and the tiled matmul whose two-matrix form fuses SwiGLU.
//
// GPU layout (see layout.ts): buffers are arrays of u32 words, read as vec4u where a block is loaded whole.
//   q8_0/q4_0 weights: the quant bytes of src/format/quant.ts unchanged (q8_0: word w = int8 elements 4w..4w+3;
//                      q4_0: 4 words per 32-block, byte j = element j low nibble, j+16 high nibble), then the
//                      scales widened to f32 (lossless), one per 32-block: the WASM kernel-memory layout.
//   f16 weights: IEEE halves, two per word (element 2i in the low half); f32: one per word.
//   q8_0 activations (prepared): nTok*cols/4 words of int8 quants, then nTok*cols/32 f32 scales (f16 values).
//   f16 activations (prepared): the f32 value of each element rounded to the nearest f16.
import { QK, type DType } from '../../../src/format/quant';

/** How a matmul of this weight dtype wants its f32 input: q8_0-quantized, rounded to f16, or as is. */
export type ActFlavor = 'q8' | 'f16' | 'f32';
export function actFlavor(dtype: DType): ActFlavor {
  return dtype === 'q8_0' || dtype === 'q4_0' ? 'q8' : dtype;
}

/** Rows of W per workgroup, and lanes (threads) sharing one row: 4 x 32 = 128 threads, the compatibility-mode cap. */
export const ROWS = 4;
export const LANES = 32;
/** Words of one tile record: tok0, count, then (quants, scales) word offsets of up to two matrices. */
export const TILE_WORDS = 6;
/** Bytes between two parameter blocks in the uniform buffer (minUniformBufferOffsetAlignment's upper bound). */
export const PARAM_STRIDE = 256;
/** Threads of the element-wise preparation kernels. */
export const PREP_WG = 64;

const BLOCK_WORDS_Q8 = QK / 4; // int8 quants of one 32-block, as u32 words
const BLOCK_WORDS_Q4 = QK / 8;

// ---- helpers shared by the shaders ----

// Correctly rounded a / b for positive normal a, b. WGSL's `/` may be off by 2.5 ulps, and one ulp of 127/amax
// flips ties of x * (127/amax): integer long division on the 24-bit mantissas gives ggml's (IEEE) quotient.
export const DIV_RN = /* wgsl */ `
fn div_rn(a: f32, b: f32) -> f32 {
  let ab = bitcast<u32>(a);
  let bb = bitcast<u32>(b);
  let ea = i32(ab >> 23u);
  let eb = i32(bb >> 23u);
  if (ea == 0 || eb == 0 || ea >= 255 || eb >= 255) { return a / b; } // zero, subnormal, inf, nan, negative
  var ma = (ab & 0x7fffffu) | 0x800000u;
  let mb = (bb & 0x7fffffu) | 0x800000u;
  var e = ea - eb + 127;
  if (ma < mb) { ma = ma << 1u; e = e - 1; }
  var r = ma; // invariant: r < 2 * mb
  var q = 0u;
  for (var i = 0; i < 24; i++) {
    q = q << 1u;
    if (r >= mb) { r = r - mb; q = q | 1u; }
    r = r << 1u;
  }
  // r = 2 * remainder: above mb rounds up, equal is a tie (to even)
  if (r > mb || (r == mb && (q & 1u) == 1u)) {
    q = q + 1u;
    if (q == 0x1000000u) { q = 0x800000u; e = e + 1; }
  }
  if (e <= 0 || e >= 255) { return a / b; } // subnormal or overflowing quotient
  return bitcast<f32>((u32(e) << 23u) | (q & 0x7fffffu));
}
`;

// f16 bits -> f32, exact for subnormal halves too (unpack2x16float may flush them on some drivers).
export const F16_TO_F32 = /* wgsl */ `
fn f16_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) { return bitcast<f32>(sign | bitcast<u32>(f32(m) * 5.9604644775390625e-8)); } // m * 2^-24
  if (e == 31u) { return bitcast<f32>(sign | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}
`;

// f32 -> nearest f16 (ties to even): its bits, and its value as f32; quant.ts's f32ToF16 line by line. WGSL leaves
// the rounding of f32 -> f16 conversions to the implementation, so it is done on the bits. Needs F16_TO_F32.
export const ROUND_F16 = /* wgsl */ `
fn round_f16(v: f32) -> f32 { return f16_to_f32(f16_bits(v)); }
fn f16_bits(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let sign = (x >> 16u) & 0x8000u;
  let ex = i32((x >> 23u) & 0xffu);
  var mant = x & 0x7fffffu;
  var h = 0u;
  let e = ex - 127 + 15;
  if (ex == 0xff) {
    h = sign | 0x7c00u | select(0u, 0x200u, mant != 0u);
  } else if (e >= 0x1f) {
    h = sign | 0x7c00u;
  } else if (e <= 0) {
    if (e < -10) {
      h = sign;
    } else {
      mant = mant | 0x800000u;
      let shift = u32(14 - e);
      let half = 1u << (shift - 1u);
      var r = mant >> shift;
      let rest = mant & ((1u << shift) - 1u);
      if (rest > half || (rest == half && (r & 1u) == 1u)) { r = r + 1u; }
      h = sign | r;
    }
  } else {
    var r = (u32(e) << 10u) | (mant >> 13u);
    let rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (r & 1u) == 1u)) { r = r + 1u; }
    h = sign | r;
  }
  return h;
}
`;

// exp within 1 ulp over the whole range (0.77 measured on lavapipe, whose builtin errs by 33). WGSL only promises
// 3 + 2|x| ulps (GPUs compute 2^(x log2 e)), and the error of the hidden silu(g) * u must stay below the FFN
// tolerance's hidden term for large |g| too. exp(x) = 2^k exp(r): r = x - k ln2, ln2 split so that k * its high
// part is exact; degree-7 Taylor on |r| <= 0.35.
export const EXP = /* wgsl */ `
fn exp_acc(x: f32) -> f32 {
  if (x > 88.7228) { return 3.4028234663852886e38; } // ~ln(FLT_MAX): the largest float stands in for inf (silu -> -0)
  if (x < -104.0) { return 0.0; }
  let k = round(x * 1.4426950408889634);
  let r = (x - k * 0.693145751953125) - k * 1.4286068203094172e-6;
  let p = 1.0 + r * (1.0 + r * (0.5 + r * (0.16666666666666666 + r * (0.041666666666666664
        + r * (0.008333333333333333 + r * (0.001388888888888889 + r * 0.0001984126984126984))))));
  return ldexp(p, i32(k));
}
`;

// Sum of four int8 products; dot4I8Packed where the WGSL implementation has it (packed_4x8_integer_dot_product).
function dot4Source(builtin: boolean): string {
  if (builtin) return 'fn dot4(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }\n';
  return /* wgsl */ `
fn dot4(a: u32, b: u32) -> i32 {
  let x = bitcast<i32>(a);
  let y = bitcast<i32>(b);
  return extractBits(x, 0u, 8u) * extractBits(y, 0u, 8u) + extractBits(x, 8u, 8u) * extractBits(y, 8u, 8u)
       + extractBits(x, 16u, 8u) * extractBits(y, 16u, 8u) + extractBits(x, 24u, 8u) * extractBits(y, 24u, 8u);
}
`;
}

const PREP_PARAMS = /* wgsl */ `
struct Params { count: u32, scales: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> act: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;
`;

/** Item index of a 1-D job spread over a 2-D grid (a dimension holds at most 65535 workgroups). */
const PREP_INDEX = `(wg.y * nwg.x + wg.x) * ${PREP_WG}u + li`;

/**
 * q8_0 activation quantization, one thread per 32-block (quant.ts quantizeQ8_0, flavour 'activation'):
 * d = f16(amax/127), q = round-half-even(x * (127/amax)) in f32. p.count = blocks, p.scales = word offset of d.
 */
export function quantizeQ8Shader(): string {
  return `${DIV_RN}${F16_TO_F32}${ROUND_F16}${PREP_PARAMS}
@compute @workgroup_size(${PREP_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let b = ${PREP_INDEX};
  if (b >= p.count) { return; }
  let base = b * ${QK}u;
  var amax = 0.0;
  for (var j = 0u; j < ${QK}u; j++) { amax = max(amax, abs(src[base + j])); }
  let id = select(0.0, div_rn(127.0, amax), amax > 0.0);
  for (var w = 0u; w < ${BLOCK_WORDS_Q8}u; w++) {
    var word = 0u;
    for (var k = 0u; k < 4u; k++) {
      let q = i32(round(src[base + w * 4u + k] * id)); // WGSL round(): ties to even
      word = word | ((bitcast<u32>(q) & 0xffu) << (8u * k));
    }
    act[b * ${BLOCK_WORDS_Q8}u + w] = word;
  }
  act[p.scales + b] = bitcast<u32>(round_f16(div_rn(amax, 127.0)));
}
`;
}

/** f16 rounding of the input of an f16 matmul (ggml converts x to f16 for its F16 vec_dot). p.count = elements. */
export function roundF16Shader(): string {
  return `${F16_TO_F32}${ROUND_F16}${PREP_PARAMS}
@compute @workgroup_size(${PREP_WG})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = ${PREP_INDEX};
  if (i < p.count) { act[i] = bitcast<u32>(round_f16(src[i])); }
}
`;
}

export interface MatmulShaderKey {
  /** one matrix (plain matmul, or the FFN's down) or two (gate, up: the output is silu(gate x) * up x) */
  dtypes: readonly DType[];
  /** tokens per tile: each weight block is read once per tile and applied to all of its tokens */
  tile: number;
  dot4: boolean;
}

/**
 * Code that loads block b of row `row` of matrix m as 32 int8 in two vec4u (lo{m}: elements 0..15, hi{m}: 16..31)
 * and its scale as s{m}. Blocks start on 16-byte boundaries (tensors are 256-byte aligned): whole-vector loads.
 */
function loadQuantBlock(dtype: 'q8_0' | 'q4_0', m: number): string {
  const scale = `let s${m} = bitcast<f32>(word(tl.s${m} + row * nb + b));`;
  if (dtype === 'q8_0') {
    return `
    let wb${m} = (tl.q${m} + (row * nb + b) * ${BLOCK_WORDS_Q8}u) >> 2u;
    let lo${m} = wts[wb${m}];
    let hi${m} = wts[wb${m} + 1u];
    ${scale}`;
  }
  // q4_0: byte j holds element j (low nibble) and j + 16 (high); n -> int8 (n - 8) bytewise without borrows: (n + 120) ^ 0x80
  return `
    let v${m} = wts[(tl.q${m} + (row * nb + b) * ${BLOCK_WORDS_Q4}u) >> 2u];
    let lo${m} = ((v${m} & vec4u(0x0f0f0f0fu)) + vec4u(0x78787878u)) ^ vec4u(0x80808080u);
    let hi${m} = (((v${m} >> vec4u(4u)) & vec4u(0x0f0f0f0fu)) + vec4u(0x78787878u)) ^ vec4u(0x80808080u);
    ${scale}`;
}

function loadFloat(dtype: 'f16' | 'f32', m: number): string {
  if (dtype === 'f32') return `let v${m} = bitcast<f32>(word(tl.q${m} + row * p.cols + c));`;
  return `let e${m} = tl.q${m} * 2u + row * p.cols + c;
      let v${m} = f16_to_f32((word(e${m} >> 1u) >> ((e${m} & 1u) * 16u)) & 0xffffu);`;
}

/**
 * Y (nTok, rows) = X (nTok, cols) @ W^T over tiles of tokens; with two matrices, H = silu(G X) * (U X).
 * Workgroup (x, y) computes rows x*ROWS.. of tile p.tileBase + y; its ROWS x LANES threads split each row's
 * blocks (or elements) between lanes, then sum the lanes' partial dots in workgroup memory. Quantized: every
 * block's integer dot is exact; it is scaled by (dw * dx) and accumulated in f32, as ggml does.
 */
export function matmulShader(key: MatmulShaderKey): string {
  const { dtypes, tile: T } = key;
  const flavor = actFlavor(dtypes[0]);
  if (dtypes.some((d) => actFlavor(d) !== flavor)) throw new Error(`matmulShader: ${dtypes.join('/')} need different inputs`);
  const mats = dtypes.map((_, m) => m);
  const accs = mats.map((m) => `var acc${m}: array<f32, ${T}>;`).join('\n  ');
  let loop: string;
  if (flavor === 'q8') {
    const loads = mats.map((m) => loadQuantBlock(dtypes[m] as 'q8_0' | 'q4_0', m)).join('');
    const dots = mats.map((m) => `
        let i${m} = dot4(lo${m}.x, xlo.x) + dot4(lo${m}.y, xlo.y) + dot4(lo${m}.z, xlo.z) + dot4(lo${m}.w, xlo.w)
                 + dot4(hi${m}.x, xhi.x) + dot4(hi${m}.y, xhi.y) + dot4(hi${m}.z, xhi.z) + dot4(hi${m}.w, xhi.w);
        acc${m}[t] = acc${m}[t] + f32(i${m}) * (s${m} * dx);`).join('');
    loop = `
    let nb = p.cols / ${QK}u;
    for (var b = lane; b < nb; b = b + ${LANES}u) {${loads}
      for (var t = 0u; t < ${T}u; t++) {
        let xb = (tl.tok0 + min(t, last)) * nb + b;
        let xlo = act[xb * 2u];
        let xhi = act[xb * 2u + 1u];
        let dx = bitcast<f32>(act_word(p.actScales + xb));${dots}
      }
    }`;
  } else {
    const loads = mats.map((m) => loadFloat(dtypes[m] as 'f16' | 'f32', m)).join('\n      ');
    const fmas = mats.map((m) => `acc${m}[t] = acc${m}[t] + v${m} * xv;`).join(' ');
    loop = `
    for (var c = lane; c < p.cols; c = c + ${LANES}u) {
      ${loads}
      for (var t = 0u; t < ${T}u; t++) {
        let xv = bitcast<f32>(act_word((tl.tok0 + min(t, last)) * p.cols + c));
        ${fmas}
      }
    }`;
  }
  const reduce = mats.map((m) => `
  for (var t = 0u; t < ${T}u; t++) { red[t * ${ROWS * LANES}u + li] = acc${m}[t]; }
  workgroupBarrier();
  var r${m} = 0.0;
  if (lane < ${T}u) {
    for (var j = 0u; j < ${LANES}u; j++) { r${m} = r${m} + red[lane * ${ROWS * LANES}u + rl * ${LANES}u + j]; }
  }
  workgroupBarrier();`).join('');
  const result = mats.length === 2 ? 'silu(r0) * r1' : 'r0';
  return `${flavor === 'q8' ? dot4Source(key.dot4) : F16_TO_F32}
struct Params { rows: u32, cols: u32, tileBase: u32, actScales: u32 }
struct Tile { tok0: u32, count: u32, q0: u32, s0: u32, q1: u32, s1: u32 }
@group(0) @binding(0) var<storage, read> wts: array<vec4u>;
@group(0) @binding(1) var<storage, read> act: array<vec4u>;
@group(0) @binding(2) var<storage, read> tiles: array<Tile>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
var<workgroup> red: array<f32, ${T * ROWS * LANES}>;

${EXP}
fn silu(v: f32) -> f32 { return v / (1.0 + exp_acc(-v)); }
// buffers are read as vec4u so that blocks load whole; single words (scales, float formats) are picked out
fn word(i: u32) -> u32 { return wts[i >> 2u][i & 3u]; }
fn act_word(i: u32) -> u32 { return act[i >> 2u][i & 3u]; }

@compute @workgroup_size(${ROWS * LANES})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = li % ${LANES}u;
  let rl = li / ${LANES}u;
  let row = wg.x * ${ROWS}u + rl;
  let tl = tiles[p.tileBase + wg.y];
  let last = tl.count - 1u; // a partial tile repeats its last token (straight-line code; the extra sums are dropped)
  ${accs}
  if (row < p.rows) {${loop}
  }${reduce}
  if (row < p.rows && lane < tl.count) { out[(tl.tok0 + lane) * p.rows + row] = ${result}; }
}
`;
}

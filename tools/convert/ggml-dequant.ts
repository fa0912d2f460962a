// ggml blocks of any type GGUF import reads -> float32 values, for the types the engine does not compute
// with (q4_1, q5_0/1, k-quants, bf16): the converter requantizes those into one of ours. Products are
// rounded to f32 step by step as ggml's dequantize_row_* computes them in float, so values match its own.
import { GGML_TYPES, GgufError, type GgmlType } from './gguf';
import { decodeTensor, f16ToF32 } from '../../src/format/quant';

const f = Math.fround;

type BlockDecoder = (b: Uint8Array, o: number, y: Float32Array, yo: number) => void;

const half = (b: Uint8Array, o: number) => f16ToF32(b[o] | (b[o + 1] << 8));
const i8 = (v: number) => (v << 24) >> 24;

/** k-quant 6-bit scale and min j (0..7) packed in 12 bytes (get_scale_min_k4). */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 0xf) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

// per-block decoders of the block types; f32, f16 and bf16 convert whole tensors at once (dequantizeGgml)
const decoders: Record<Exclude<GgmlType, 'f32' | 'f16' | 'bf16'>, BlockDecoder> = {
  // { f16 d; i8 qs[32] }
  q8_0: (b, o, y, yo) => {
    const d = half(b, o);
    for (let j = 0; j < 32; j++) y[yo + j] = f(d * i8(b[o + 2 + j]));
  },
  // { f16 d; u8 qs[16] }: low nibbles are elements 0..15, high nibbles 16..31, offset by 8
  q4_0: (b, o, y, yo) => {
    const d = half(b, o);
    for (let j = 0; j < 16; j++) {
      y[yo + j] = f(d * ((b[o + 2 + j] & 0xf) - 8));
      y[yo + j + 16] = f(d * ((b[o + 2 + j] >> 4) - 8));
    }
  },
  // { f16 d, m; u8 qs[16] }: x = d * q + m
  q4_1: (b, o, y, yo) => {
    const d = half(b, o);
    const m = half(b, o + 2);
    for (let j = 0; j < 16; j++) {
      y[yo + j] = f(f(d * (b[o + 4 + j] & 0xf)) + m);
      y[yo + j + 16] = f(f(d * (b[o + 4 + j] >> 4)) + m);
    }
  },
  // { f16 d; u32 qh; u8 qs[16] }: bit j of qh is the 5th bit of element j
  q5_0: (b, o, y, yo) => {
    const d = half(b, o);
    const qh = (b[o + 2] | (b[o + 3] << 8) | (b[o + 4] << 16) | (b[o + 5] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const lo = (b[o + 6 + j] & 0xf) | (((qh >>> j) & 1) << 4);
      const hi = (b[o + 6 + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      y[yo + j] = f(d * (lo - 16));
      y[yo + j + 16] = f(d * (hi - 16));
    }
  },
  // { f16 d, m; u32 qh; u8 qs[16] }
  q5_1: (b, o, y, yo) => {
    const d = half(b, o);
    const m = half(b, o + 2);
    const qh = (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const lo = (b[o + 8 + j] & 0xf) | (((qh >>> j) & 1) << 4);
      const hi = (b[o + 8 + j] >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      y[yo + j] = f(f(d * lo) + m);
      y[yo + j + 16] = f(f(d * hi) + m);
    }
  },
  // { u8 scales[16] (4-bit scale | 4-bit min << 4); u8 qs[64]; f16 d, dmin }: 2-bit quants, 16 per scale
  q2_K: (b, o, y, yo) => {
    const d = half(b, o + 80);
    const dmin = half(b, o + 82);
    let q = o + 16;
    let is = 0;
    let out = yo;
    for (let n = 0; n < 256; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (const half16 of [0, 16]) {
          const sc = b[o + is++];
          const dl = f(d * (sc & 0xf));
          const ml = f(dmin * (sc >> 4));
          for (let l = 0; l < 16; l++) y[out++] = f(f(dl * ((b[q + half16 + l] >> shift) & 3)) - ml);
        }
      }
      q += 32;
    }
  },
  // { u8 hmask[32]; u8 qs[64]; u8 scales[12] (16 6-bit scales, offset 32); f16 d }: 2 low bits + 1 high bit
  q3_K: (b, o, y, yo) => {
    const d = half(b, o + 108);
    const s = o + 96;
    const scales = new Int8Array(16);
    for (let j = 0; j < 16; j++) {
      // low 4 bits: byte j%8 (low nibble for j<8, high for j>=8); high 2 bits: byte 8 + j%4, bits 2*(j/4)
      const low = j < 8 ? b[s + j] & 0xf : b[s + j - 8] >> 4;
      const high = (b[s + 8 + (j % 4)] >> (2 * Math.floor(j / 4))) & 3;
      scales[j] = (low | (high << 4)) - 32;
    }
    let q = o + 32;
    let is = 0;
    let m = 1;
    let out = yo;
    for (let n = 0; n < 256; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (const half16 of [0, 16]) {
          const dl = f(d * scales[is++]);
          for (let l = 0; l < 16; l++) {
            const v = ((b[q + half16 + l] >> shift) & 3) - (b[o + half16 + l] & m ? 0 : 4);
            y[out++] = f(dl * v);
          }
        }
        m <<= 1;
      }
      q += 32;
    }
  },
  // { f16 d, dmin; u8 scales[12]; u8 qs[128] }: 4-bit quants in 8 sub-blocks of 32, 6-bit scale and min each
  q4_K: (b, o, y, yo) => {
    const d = half(b, o);
    const dmin = half(b, o + 2);
    let q = o + 16;
    let out = yo;
    for (let is = 0; is < 8; is += 2) {
      const [s1, m1] = scaleMinK4(b, o + 4, is);
      const [s2, m2] = scaleMinK4(b, o + 4, is + 1);
      const [d1, n1, d2, n2] = [f(d * s1), f(dmin * m1), f(d * s2), f(dmin * m2)];
      for (let l = 0; l < 32; l++) y[out++] = f(f(d1 * (b[q + l] & 0xf)) - n1);
      for (let l = 0; l < 32; l++) y[out++] = f(f(d2 * (b[q + l] >> 4)) - n2);
      q += 32;
    }
  },
  // { f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128] }: as q4_K with a 5th bit from qh
  q5_K: (b, o, y, yo) => {
    const d = half(b, o);
    const dmin = half(b, o + 2);
    const qh = o + 16;
    let ql = o + 48;
    let out = yo;
    let u1 = 1;
    let u2 = 2;
    for (let is = 0; is < 8; is += 2) {
      const [s1, m1] = scaleMinK4(b, o + 4, is);
      const [s2, m2] = scaleMinK4(b, o + 4, is + 1);
      const [d1, n1, d2, n2] = [f(d * s1), f(dmin * m1), f(d * s2), f(dmin * m2)];
      for (let l = 0; l < 32; l++) y[out++] = f(f(d1 * ((b[ql + l] & 0xf) + (b[qh + l] & u1 ? 16 : 0))) - n1);
      for (let l = 0; l < 32; l++) y[out++] = f(f(d2 * ((b[ql + l] >> 4) + (b[qh + l] & u2 ? 16 : 0))) - n2);
      ql += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  },
  // { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }: 6-bit quants (4 low + 2 high bits), offset 32
  q6_K: (b, o, y, yo) => {
    const d = half(b, o + 208);
    let ql = o;
    let qh = o + 128;
    let sc = o + 192;
    for (let n = 0; n < 256; n += 128) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const q1 = ((b[ql + l] & 0xf) | (((b[qh + l] >> 0) & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32] & 0xf) | (((b[qh + l] >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l] >> 4) | (((b[qh + l] >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32] >> 4) | (((b[qh + l] >> 6) & 3) << 4)) - 32;
        y[yo + n + l] = f(f(d * i8(b[sc + is])) * q1);
        y[yo + n + l + 32] = f(f(d * i8(b[sc + is + 2])) * q2);
        y[yo + n + l + 64] = f(f(d * i8(b[sc + is + 4])) * q3);
        y[yo + n + l + 96] = f(f(d * i8(b[sc + is + 6])) * q4);
      }
      ql += 64;
      qh += 32;
      sc += 8;
    }
  },
};

/** `n` values of a ggml tensor of `type` (ggml block layout, as stored in a GGUF file). */
export function dequantizeGgml(type: GgmlType, bytes: Uint8Array, n: number): Float32Array {
  const { elems, bytes: blockBytes } = GGML_TYPES[type];
  if (n % elems !== 0) throw new GgufError(`${type}: ${n} elements are not whole blocks of ${elems}`);
  const blocks = n / elems;
  if (bytes.length < blocks * blockBytes) throw new GgufError(`${type}: ${bytes.length} bytes hold fewer than ${n} elements`);
  // f32 and f16 are our own formats (ggml's layout is ours); bf16 is the high half of an f32
  if (type === 'f32' || type === 'f16') return decodeTensor(type, bytes, n);
  if (type === 'bf16') {
    const half16 = new Uint16Array(bytes.slice(0, 2 * n).buffer);
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = half16[i] << 16;
    return new Float32Array(bits.buffer);
  }
  const y = new Float32Array(n);
  const decode = decoders[type];
  for (let i = 0; i < blocks; i++) decode(bytes, i * blockBytes, y, i * elems);
  return y;
}

// exp for f32, in a scalar and a SIMD form that give the same bits (the same f32 operations in the same order;
// wasm has no fused multiply-add to tell them apart): Cody-Waite reduction by ln 2 in two parts, then Cephes'
// degree-5 polynomial on |r| <= ln2/2 (within 2 ulp of the correctly rounded value). Attention's softmax takes its
// exponentials four at a time with it (1.07x on a 1,024-position decode step; ggml's CPU path uses its own
// approximate vector expf there too), and so does the FFN's silu (siluMulF32x4): granite's expert FFN at 4-64
// tokens 1.03-1.07x, its prefill 1.03x end to end, decode unchanged. (The scalar form alone, per element, measured
// slower than the library's expf: the default model's prefill 0.92x.)

const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375; // ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 significant bits: n * LN2_HI is exact
const LN2_LO: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;
// Inside [LO, HI] the exponent add below stays a normal f32: n in -126..127 and the polynomial in [1, 2) where
// n = -126. Outside: +inf above (e^x > 2.7e38 there; the last 0.35 of f32's range is given up) and 0 below
// (e^x < 1.7e-38, subnormal). Callers: softmax (x <= 0) and silu's e^-g, where neither end matters.
const HI: f32 = 88.37626; // 127.5 * ln 2
const LO: f32 = -87.0;

/** e^x, f32. NaN in, NaN out. */
export function expF32(x: f32): f32 {
  if (x != x) return x;
  if (x > HI) return Infinity;
  if (x < LO) return 0;
  const n = nearest<f32>(x * LOG2E);
  const r = (x - n * LN2_HI) - n * LN2_LO;
  let p = P0 * r + P1;
  p = p * r + P2;
  p = p * r + P3;
  p = p * r + P4;
  p = p * r + P5;
  const y = (p * (r * r) + r) + <f32>1;
  return reinterpret<f32>(reinterpret<i32>(y) + (<i32>n << 23));
}

// expF32x4's constants as vectors in memory, read where they are used: as v128 immediates V8 (x64) rebuilt each one
// at every use, three instructions apiece (simd-util.ts, SPLATS): decode attention at 1,024 positions 1.02-1.04x
const EXP_CONSTS: usize = memory.data<f32>([LOG2E, LOG2E, LOG2E, LOG2E, LN2_HI, LN2_HI, LN2_HI, LN2_HI,
  LN2_LO, LN2_LO, LN2_LO, LN2_LO, P0, P0, P0, P0, P1, P1, P1, P1, P2, P2, P2, P2, P3, P3, P3, P3, P4, P4, P4, P4,
  P5, P5, P5, P5, 1, 1, 1, 1, Infinity, Infinity, Infinity, Infinity, HI, HI, HI, HI, LO, LO, LO, LO], 16);
@inline function c(k: i32): v128 { return v128.load(EXP_CONSTS + <usize>(k << 4)); }

/** expF32 of each lane, bit for bit. */
@inline export function expF32x4(x: v128): v128 {
  const n = f32x4.nearest(f32x4.mul(x, c(0)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, c(1))), f32x4.mul(n, c(2)));
  let p = f32x4.add(f32x4.mul(c(3), r), c(4));
  p = f32x4.add(f32x4.mul(p, r), c(5));
  p = f32x4.add(f32x4.mul(p, r), c(6));
  p = f32x4.add(f32x4.mul(p, r), c(7));
  p = f32x4.add(f32x4.mul(p, r), c(8));
  const y = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), c(9));
  let e = i32x4.add(y, i32x4.shl(i32x4.trunc_sat_f32x4_s(n), 23));
  e = v128.bitselect(c(10), e, f32x4.gt(x, c(11)));
  e = v128.andnot(e, f32x4.lt(x, c(12)));
  // a NaN lane compares false both ways: give back x itself, as the scalar form does
  return v128.bitselect(x, e, f32x4.ne(x, x));
}

/** silu(g) * u = g / (1 + e^-g) * u (ggml_silu_f32 times the up projection), e^-g by expF32: siluMulF32x4's lanes. */
export function siluMul(g: f32, u: f32): f32 {
  return g / (<f32>1 + expF32(-g)) * u;
}

/** siluMul of each lane, bit for bit. */
@inline export function siluMulF32x4(g: v128, u: v128): v128 {
  return f32x4.mul(f32x4.div(g, f32x4.add(c(9), expF32x4(f32x4.neg(g)))), u);
}

// y += s * x over Float32Arrays in JS, rounded as the WASM kernels' addScaled (y = f32(y + f32(f32(s) * x))): each
// rounding is a Float32Array store (an f32 product or sum computed in f64 and rounded once is the f32 operation's
// result), not Math.fround per element, which ran 5-8x slower in Node 26: V8 14's Maglev inlines such a loop into its
// caller and calls fround there, and a caller run once per chunk and layer rarely reaches Turbofan.

let products = new Float32Array(0);

/** y (n) = f32(y + f32(f32(s) * x)) element-wise; x at least y's length. */
export function addScaledF32(y: Float32Array, x: Float32Array, s: number): void {
  const n = y.length;
  if (products.length < n) products = new Float32Array(n);
  const sf = Math.fround(s);
  for (let i = 0; i < n; i++) products[i] = sf * x[i];
  for (let i = 0; i < n; i++) y[i] += products[i];
}

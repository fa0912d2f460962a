// The cos/sin table the WGSL rope kernel reads (as vLLM's cos_sin_cache), computed on the host exactly as the
// reference executor computes each angle: f32 inverse frequencies (HF's 1 / base^(2i/rot)), theta = f32(pos * f),
// cos and sin in double rounded to f32. WGSL's own sin/cos are far too coarse for positions in the thousands.
const fr = Math.fround;

/** For positions 0..nPos-1 and pairs i < rotDims/2: [(pos * half + i) * 2] = cos, [... + 1] = sin. */
export function ropeTable(base: number, rotDims: number, nPos: number): Float32Array<ArrayBuffer> {
  if (!(rotDims > 0 && rotDims % 2 === 0)) throw new RangeError(`rope: rotDims ${rotDims} must be even and positive`);
  const half = rotDims / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = fr(1 / fr(Math.pow(base, fr((2 * i) / rotDims))));
  const tab = new Float32Array(nPos * half * 2);
  for (let pos = 0; pos < nPos; pos++) {
    for (let i = 0; i < half; i++) {
      const theta = fr(pos * invFreq[i]);
      tab[(pos * half + i) * 2] = Math.cos(theta);
      tab[(pos * half + i) * 2 + 1] = Math.sin(theta);
    }
  }
  return tab;
}

// Causal multi-head attention with GQA over an f32 KV cache, for decode (nTok = 1) and prefill (nTok > 1).
// The q.k dot and the p*v accumulation have SIMD versions and scalar twins with the same float order.
import { dotF32Simd, dotF32Scalar } from './dot';

/** o (n) += p * v (n); element-wise, so SIMD and scalar agree bit for bit. */
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

export function attentionScratch(nCtx: i32): i32 {
  return nCtx << 2;
}

/**
 * q, out: (nTok, nHead*headDim); kCache, vCache: (maxCtx, nKvHead*headDim). Query t (position pos0 + t) attends
 * to positions 0..pos0+t. scores = q.k * scale, softmax with the max subtracted and the sum in f64 (ggml's
 * soft_max), out = sum_j p_j v_j. `scores`: pos0 + nTok floats of scratch. out may alias q.
 */
export function attention(q: usize, k: usize, v: usize, out: usize, nTok: i32, pos0: i32, nHead: i32, nKvHead: i32,
  headDim: i32, scale: f32, scores: usize, simd: bool): void {
  const group = nHead / nKvHead;
  const qStride = nHead * headDim;
  const kvStride = nKvHead * headDim;
  for (let t = 0; t < nTok; t++) {
    const n = pos0 + t + 1;
    for (let h = 0; h < nHead; h++) {
      const kvOff = <usize>((h / group) * headDim) << 2;
      const qrow = q + (<usize>(t * qStride + h * headDim) << 2);
      let mx = -Infinity as f32;
      for (let j = 0; j < n; j++) {
        const kr = k + (<usize>(j * kvStride) << 2) + kvOff;
        const s = (simd ? dotF32Simd(qrow, kr, headDim) : dotF32Scalar(qrow, kr, headDim)) * scale;
        store<f32>(scores + (<usize>j << 2), s);
        mx = max<f32>(mx, s);
      }
      let sum: f64 = 0;
      for (let j = 0; j < n; j++) {
        const e = Mathf.exp(load<f32>(scores + (<usize>j << 2)) - mx);
        store<f32>(scores + (<usize>j << 2), e);
        sum += <f64>e;
      }
      const inv = <f32>(1.0 / sum);
      const o = out + (<usize>(t * qStride + h * headDim) << 2);
      memory.fill(o, 0, <usize>headDim << 2); // after the q row was read: out may alias q
      for (let j = 0; j < n; j++) {
        axpy(o, v + (<usize>(j * kvStride) << 2) + kvOff, load<f32>(scores + (<usize>j << 2)) * inv, headDim, simd);
      }
    }
  }
}

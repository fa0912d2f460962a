// Conformance cases for the activation kernels: rmsNorm, rope, attention, softmax, topK, addScaled,
// each checked against ts-ref and against a float64 definition.
import type { AttentionShape, RopeLayout } from '../../../src/kernels/types';
import type { Case } from './cases-matmul';
import { expectClose, expectExact, maxAbs } from './harness';
import { attentionF64, ropeF64, ropePair, rmsNormF64, softmaxF64, topKF64 } from './naive';
import { Rng } from './rng';

// rmsNorm: relative per element. A double sum of squares leaves ~3 f32 roundings (mean + eps, sqrt, 1/x)
// and 2 for the products; an f32 sum of squares over 4096 terms would still stay below 1e-5.
const RMS_TOL = 1e-5;
// rope: the rotation of a pair (a, b) errs by (error of theta) * |(a, b)| plus a few ulps. theta = pos * invFreq
// in f32 carries ~ulp(theta) ~ pos * 1e-7 whichever way an executor computes it (HF's 1/base^(2i/d), ggml's
// running product of theta_scale), so the bound grows with the position. Unrotated dims must be copied exactly.
const ROPE_TOL = 3e-6;
const ROPE_POS_TOL = 5e-7;
// attention: the output is a convex combination of V rows, so errors scale with max|V|; a score error of
// ~1e-7 * |score| changes the weights by that relative amount, hence the (1 + max|score|) factor.
const ATTN_TOL = 1e-5;
// softmax: exp of (x - max) has a relative error ~ulp(|x - max|); values span up to ~50 here.
const SOFTMAX_TOL = 1e-5;
// addScaled: one rounding (fused multiply-add) or two (multiply, then add): 2 ulps of |a| + |s b|.
const ADD_TOL = 2.5e-7;

const lazy = <T>(f: () => T): (() => T) => {
  let v: T | undefined;
  return () => (v ??= f());
};

function rmsNormCase(n: number, nTok: number, eps: number, inPlace: boolean, seed: number, scale = 3): Case {
  const data = lazy(() => {
    const rng = new Rng(seed);
    return { x: rng.floats(n * nTok, scale), w: rng.floats(n, 1) };
  });
  return {
    name: `rmsNorm n=${n} nTok=${nTok} eps=${eps} |x|~${scale}${inPlace ? ' in place' : ''}`,
    exec(k, a) {
      const x = a.f32(data().x);
      const w = a.f32(data().w);
      const out = inPlace ? x : a.alloc(n * nTok * 4);
      a.op(() => k.rmsNorm(x, w, out, n, nTok, eps));
      return [a.read(out, n * nTok)];
    },
    verify([got], [ref], label) {
      const want = rmsNormF64(data().x, data().w, n, nTok, eps);
      expectClose(`${label} vs ts-ref`, got, ref, (i) => RMS_TOL * Math.abs(ref[i]));
      expectClose(`${label} vs float64`, got, want, (i) => RMS_TOL * Math.abs(want[i]));
    },
  };
}

function ropeCase(layout: RopeLayout, nTok: number, nHeads: number, headDim: number, rotDims: number, pos0: number, base: number, seed: number): Case {
  const x = lazy(() => new Rng(seed).floats(nTok * nHeads * headDim, 1));
  // tolerance per element: the norm of the pair it rotates with, times the theta error at its position
  const tol = lazy(() => {
    const t = new Float64Array(x().length); // 0 for unrotated dims: they must be exact copies
    for (let tok = 0; tok < nTok; tok++) {
      for (let h = 0; h < nHeads; h++) {
        const o = (tok * nHeads + h) * headDim;
        for (let i = 0; i < rotDims / 2; i++) {
          const [p, q] = ropePair(layout, i, rotDims);
          const norm = Math.hypot(x()[o + p], x()[o + q]);
          t[o + p] = t[o + q] = (ROPE_TOL + ROPE_POS_TOL * (pos0 + tok)) * norm + 1e-30;
        }
      }
    }
    return t;
  });
  return {
    name: `rope ${layout} nTok=${nTok} heads=${nHeads} headDim=${headDim} rot=${rotDims} pos0=${pos0} base=${base}`,
    exec(k, a) {
      const p = a.f32(x());
      a.op(() => k.rope(p, nTok, nHeads, headDim, rotDims, pos0, base, layout));
      return [a.read(p, x().length)];
    },
    verify([got], [ref], label) {
      const want = ropeF64(x(), nTok, nHeads, headDim, rotDims, pos0, base, layout);
      expectClose(`${label} vs ts-ref`, got, ref, (i) => tol()[i]);
      expectClose(`${label} vs float64`, got, want, (i) => tol()[i]);
    },
  };
}

// The KV cache holds maxCtx rows; rows at and past pos0 + nTok are filled with 1e6, so an executor that
// reads past the causal end (or the cache's live part) is caught by a huge score.
/**
 * K and V of `rows` positions x `kv` values; the rows at and past `live` are set to `poison`, so an executor that
 * reads past the causal end (or the cache's live part) is caught by a huge score.
 */
export function poisonedKv(rng: Rng, rows: number, kv: number, live: number, poison: number): { k: Float32Array; v: Float32Array } {
  const k = rng.floats(rows * kv, 1);
  const v = rng.floats(rows * kv, 1);
  k.fill(poison, live * kv);
  v.fill(poison, live * kv);
  return { k, v };
}

/** float64 attention over the live rows of K and V (what the executor sees), with the tolerance ATTN_TOL gives it. */
export function attentionReference(q: Float32Array, kLive: Float32Array, vLive: Float32Array, nTok: number, pos0: number, shape: AttentionShape) {
  const r = attentionF64(q, kLive, vLive, nTok, pos0, shape);
  return { ...r, tol: ATTN_TOL * maxAbs(vLive) * (1 + r.maxScore) };
}

function attentionCase(shape: AttentionShape, nTok: number, pos0: number, qScale: number, seed: number): Case {
  const { nHead, nKvHead, headDim } = shape;
  const maxCtx = pos0 + nTok + 5;
  const kv = nKvHead * headDim;
  const data = lazy(() => {
    const rng = new Rng(seed);
    const { k, v } = poisonedKv(rng, maxCtx, kv, pos0 + nTok, 1e6);
    return { q: rng.floats(nTok * nHead * headDim, qScale), k, v };
  });
  const f64 = lazy(() => {
    const { q, k, v } = data();
    const live = (pos0 + nTok) * kv;
    return attentionReference(q, k.subarray(0, live), v.subarray(0, live), nTok, pos0, shape);
  });
  const kind = nKvHead === nHead ? 'MHA' : nKvHead === 1 ? 'MQA' : `GQA ${nHead}/${nKvHead}`;
  return {
    name: `attention ${kind} headDim=${headDim} nTok=${nTok} pos0=${pos0}${qScale !== 1 ? ` |q|x${qScale}` : ''}`,
    exec(k, a) {
      const q = a.f32(data().q);
      const kc = a.f32(data().k);
      const vc = a.f32(data().v);
      const n = nTok * nHead * headDim;
      const out = a.alloc(n * 4);
      a.op(() => k.attention(q, kc, vc, out, nTok, pos0, shape));
      return [a.read(out, n)];
    },
    verify([got], [ref], label) {
      const { out, tol } = f64();
      expectClose(`${label} vs ts-ref`, got, ref, () => tol);
      expectClose(`${label} vs float64`, got, out, () => tol);
    },
  };
}

function softmaxCase(n: number, rows: number, spread: number, offset: number, seed: number): Case {
  const x = lazy(() => new Rng(seed).floats(n * rows, spread).map((v) => v + offset));
  return {
    name: `softmax n=${n} rows=${rows} spread=${spread} offset=${offset}`,
    exec(k, a) {
      const p = a.f32(x());
      a.op(() => k.softmax(p, n, rows));
      return [a.read(p, n * rows)];
    },
    verify([got], [ref], label) {
      const want = softmaxF64(x(), n, rows);
      expectClose(`${label} vs ts-ref`, got, ref, (i) => SOFTMAX_TOL * ref[i] + 1e-12);
      expectClose(`${label} vs float64`, got, want, (i) => SOFTMAX_TOL * want[i] + 1e-12);
    },
  };
}

function topKCase(name: string, x: () => Float32Array, k: number): Case {
  return {
    name: `topK ${name} n=${x().length} k=${k}`,
    exec(kern, a) {
      const p = a.f32(x());
      const idx = a.i32(k);
      const val = a.alloc(k * 4);
      a.op(() => kern.topK(p, x().length, k, idx, val));
      return [Float32Array.from(a.readI32(idx, k)), a.read(val, k)];
    },
    verify([idx, val], [refIdx, refVal], label) {
      const want = topKF64(x(), k);
      expectExact(`${label} indices vs ts-ref`, idx, refIdx);
      expectExact(`${label} values vs ts-ref`, val, refVal);
      expectExact(`${label} indices vs sort`, idx, want.idx);
      expectExact(`${label} values vs sort`, val, want.val);
    },
  };
}

function addScaledCase(n: number, s: number, seed: number): Case {
  const data = lazy(() => {
    const rng = new Rng(seed);
    return { a: rng.floats(n, 2), b: rng.floats(n, 2) };
  });
  return {
    name: `addScaled n=${n} s=${s}`,
    exec(k, ar) {
      const a = ar.f32(data().a);
      const b = ar.f32(data().b);
      ar.op(() => k.addScaled(a, b, s, n));
      expectExact('addScaled must not modify b', ar.read(b, n), data().b);
      return [ar.read(a, n)];
    },
    verify([got], [ref], label) {
      const { a, b } = data();
      const tol = (i: number) => ADD_TOL * (Math.abs(a[i]) + Math.abs(s * b[i])) + 1e-30;
      expectClose(`${label} vs ts-ref`, got, ref, tol);
      expectClose(`${label} vs float64`, got, a.map((v, i) => v + s * b[i]), tol);
    },
  };
}

export function opCases(): Case[] {
  const cases: Case[] = [];
  let seed = 500;
  for (const [n, nTok] of [[64, 1], [1024, 7], [4096, 3], [100, 2]]) cases.push(rmsNormCase(n, nTok, 1e-5, false, seed++));
  cases.push(rmsNormCase(512, 3, 1e-6, true, seed++));
  cases.push(rmsNormCase(256, 2, 1e-5, false, seed++, 2e-3)); // mean(x^2) ~ eps: eps must be inside the sqrt
  for (const layout of ['neox', 'interleaved'] as const) {
    cases.push(ropeCase(layout, 1, 4, 64, 64, 0, 10000, seed++)); // position 0 is the identity
    cases.push(ropeCase(layout, 1, 4, 64, 64, 37, 10000, seed++)); // decode
    cases.push(ropeCase(layout, 7, 4, 64, 64, 0, 10000, seed++)); // prefill
    cases.push(ropeCase(layout, 5, 2, 128, 128, 300, 1e6, seed++));
    cases.push(ropeCase(layout, 3, 3, 64, 32, 11, 10000, seed++)); // partial rotary: rotDims < headDim
    cases.push(ropeCase(layout, 2, 2, 80, 20, 5, 500, seed++));
  }
  const gqa = { nHead: 4, nKvHead: 2, headDim: 64, scale: 1 / 8 };
  const mha = { nHead: 4, nKvHead: 4, headDim: 64, scale: 1 / 8 };
  const mqa = { nHead: 8, nKvHead: 1, headDim: 32, scale: 1 / Math.sqrt(32) };
  const wide = { nHead: 2, nKvHead: 2, headDim: 128, scale: 1 / Math.sqrt(128) };
  for (const shape of [gqa, mha, mqa]) {
    cases.push(attentionCase(shape, 1, 0, 1, seed++)); // first token: attends to itself only
    cases.push(attentionCase(shape, 1, 13, 1, seed++)); // decode
    cases.push(attentionCase(shape, 7, 0, 1, seed++)); // prefill
    cases.push(attentionCase(shape, 5, 9, 1, seed++)); // prefill of a continuation (chunk after a cache)
  }
  cases.push(attentionCase(wide, 1, 100, 1, seed++));
  cases.push(attentionCase(gqa, 3, 20, 6, seed++)); // sharp scores: max-subtraction matters
  cases.push(softmaxCase(8, 1, 1, 0, seed++));
  cases.push(softmaxCase(64, 3, 2, 0, seed++));
  cases.push(softmaxCase(1000, 2, 5, 0, seed++));
  cases.push(softmaxCase(37, 4, 10, 200, seed++)); // exp(200) overflows f32 without max subtraction
  const rng = new Rng(seed++);
  const routerLogits = rng.floats(64, 1);
  const ties = Float32Array.from([1, 3, 2, 3, 0, 3, 2, -1, 2, 3]); // ties must keep the lower index first
  const negatives = Float32Array.from(rng.floats(60, 1), (v) => -Math.abs(v) - 1);
  const odd = rng.floats(129, 1);
  cases.push(topKCase('router logits', () => routerLogits, 8));
  cases.push(topKCase('router logits', () => routerLogits, 1));
  cases.push(topKCase('ties', () => ties, 6));
  cases.push(topKCase('ties', () => ties, 10));
  cases.push(topKCase('all negative', () => negatives, 6));
  cases.push(topKCase('odd length', () => odd, 2));
  for (const [n, s] of [[100, 0.37], [4096, -1.5], [7, 1]]) cases.push(addScaledCase(n, s, seed++));
  cases.push(...prefillShapeCases(seed));
  return cases;
}

/**
 * The shapes of a long prefill (issue 15): chunks of more than 64 tokens (a GPU executor's tile and workgroup
 * sizes), qwen3's per-head q/k norm (headDim 128 over hidden / heads = 64) and a chunk after a cache.
 */
function prefillShapeCases(seed: number): Case[] {
  const cases: Case[] = [];
  const qwen3 = { nHead: 8, nKvHead: 2, headDim: 128, scale: 1 / Math.sqrt(128) }; // hidden 512: headDim != 512 / 8
  cases.push(rmsNormCase(512, 70, 1e-6, false, seed++)); // the attention norm of a 70-token chunk
  cases.push(rmsNormCase(128, 70 * 8, 1e-6, true, seed++)); // q norm 'per_head': one row per (token, head)
  cases.push(rmsNormCase(1024, 70, 1e-6, true, seed++)); // q norm 'full' over nHead * headDim
  for (const layout of ['neox', 'interleaved'] as const) {
    cases.push(ropeCase(layout, 70, 8, 128, 128, 0, 1e6, seed++));
    cases.push(ropeCase(layout, 65, 2, 128, 64, 1000, 10000, seed++)); // partial rotary at positions past 1000
  }
  cases.push(attentionCase(qwen3, 70, 0, 1, seed++)); // a whole prompt: the last queries see 70 keys (two key tiles)
  cases.push(attentionCase(qwen3, 65, 30, 1, seed++)); // a chunk after a cache
  cases.push(attentionCase({ nHead: 6, nKvHead: 3, headDim: 64, scale: 0.125 }, 1, 200, 2, seed++)); // decode far out
  // a context whose scores of all heads exceed the f32 kernel's 256 KiB budget: heads go in blocks of 3 and 1
  cases.push(attentionCase({ nHead: 4, nKvHead: 2, headDim: 32, scale: 1 / Math.sqrt(32) }, 2, 21000, 1, seed++));
  cases.push(softmaxCase(40, 70, 3, 0, seed++)); // router probabilities of a chunk (granite: 40 experts)
  cases.push(routerTopKBeforeSoftmaxCase(40, 8, seed++));
  cases.push(addScaledCase(70 * 512, 0.22, seed++)); // granite's residual multiplier over a chunk
  return cases;
}

/**
 * granite's router (routerTopKBeforeSoftmax): topK of the logits, then softmax over the k chosen values; one
 * kernel's output feeds the next, so an executor that returns its values late or in another order fails.
 */
function routerTopKBeforeSoftmaxCase(n: number, k: number, seed: number): Case {
  const x = lazy(() => new Rng(seed).floats(n, 2));
  return {
    name: `softmax of topK (granite router) n=${n} k=${k}`,
    exec(kern, a) {
      const p = a.f32(x());
      const idx = a.i32(k);
      const val = a.alloc(k * 4);
      a.op(() => kern.topK(p, n, k, idx, val));
      a.op(() => kern.softmax(val, k, 1));
      return [Float32Array.from(a.readI32(idx, k)), a.read(val, k)];
    },
    verify([idx, w], [refIdx, refW], label) {
      const top = topKF64(x(), k);
      const want = softmaxF64(Float32Array.from(top.val), k, 1);
      expectExact(`${label} indices vs ts-ref`, idx, refIdx);
      expectExact(`${label} indices vs sort`, idx, top.idx);
      expectClose(`${label} weights vs ts-ref`, w, refW, (i) => SOFTMAX_TOL * refW[i] + 1e-12);
      expectClose(`${label} weights vs float64`, w, want, (i) => SOFTMAX_TOL * want[i] + 1e-12);
    },
  };
}

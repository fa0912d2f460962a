// Bytes of scratch the WASM attention takes for one call, for admission's bound (src/runtime/admission.ts) without a
// module at hand: wasm/assembly/attention.ts's attentionScratch (f32 cache) and attentionKvScratch (any other),
// restated (test/unit/kernels/attention-scratch.test.ts holds each equal to the module's export over many shapes).

const SCORES_BUDGET = 256 * 1024; // attention.ts: the scores of a block of query tokens stay within this
const V_BLOCK = 64; // attention.ts: V rows dequantized at a time
const align64 = (n: number) => (n + 63) & ~63;
const scoreStride = (nCtx: number) => (nCtx + 3) & ~3;

/** attentionScratch(nCtx, nHead): the f32 kernel's scores of a block of query heads at a context of nCtx positions. */
export function attentionScratchBytes(nCtx: number, nHead: number): number {
  const one = scoreStride(nCtx) * 4;
  return Math.min(Math.max(Math.floor(SCORES_BUDGET / one), 1), nHead) * one;
}

/** The most attentionScratchBytes takes over every call of a generation of `positions` positions. */
export function attentionScratchBound(positions: number, nHead: number): number {
  const one = scoreStride(positions) * 4; // one head's scores at the longest context
  return Math.max(one, Math.min(SCORES_BUDGET, nHead * one)); // a block fills the budget at most, unless one head alone exceeds it
}

/** attentionKvScratch(nCtx, headDim, group, nTok): scratch of nTok queries (GQA group size `group`) ending at position nCtx - 1. */
export function attentionKvScratchBytes(nCtx: number, headDim: number, group: number, nTok: number): number {
  const stride = scoreStride(nCtx);
  const tb = Math.min(Math.max(Math.floor(SCORES_BUDGET / (group * stride * 4)), 1), nTok);
  const headAct = Math.max(align64(headDim * 3 + (headDim / 32) * 8), group * align64(headDim * 4)); // a query as q8_0 dot input, or the group's as f16
  return align64(tb * group * stride * 4) + align64(headAct) + V_BLOCK * headDim * 4;
}

/** The most attentionKvScratchBytes takes over every call of a generation of `positions` positions, at most `chunk` queries a call. */
export function attentionKvScratchBound(positions: number, headDim: number, group: number, chunk: number): number {
  const stride = scoreStride(positions);
  const one = group * stride * 4; // one query token's scores at the longest context
  const scores = Math.max(one, Math.min(SCORES_BUDGET, Math.min(chunk, positions) * one)); // a block fills the budget at most, unless one query alone exceeds it
  const headAct = Math.max(align64(headDim * 3 + (headDim / 32) * 8), group * align64(headDim * 4));
  return align64(scores) + align64(headAct) + V_BLOCK * headDim * 4;
}

// One forward pass for every supported architecture, driven by the flags in Architecture: a batch of
// tokens (prefill: many, decode: one) goes through the trunk, the routers and the experts, and leaves
// its keys/values in the sequence's KV cache. Kernels do the arithmetic; this file only composes them.
// Flags by architecture: qwen2_moe qkvBias + shared expert with sigmoid gate; olmoe qkNorm 'full';
// qwen3_moe qkNorm 'per_head' with headDim != hidden/heads; granitemoe the four multipliers and
// routerTopKBeforeSoftmax; normTopKProb per config. Each is checked in test/unit/engine/.
import type { Architecture } from '../format/manifest';
import { quantBytes, isQuantized } from '../format/quant';
import type { Kernels, Mat, Ptr } from '../kernels/types';
import type { ExpertExecutor, ExpertRoute } from './experts';
import { localHead, scaleLogits, type HeadExecutor } from './head';
import { kvTensorBytes, type KvCacheType } from './kv-cache';
import type { ModelWeights } from './model';

/** Tokens per forward call during prefill: bounds scratch memory for long prompts. */
export const PREFILL_CHUNK = 64;

/** Which rows a Sequence's forward calls ask logits for (ForwardOptions.logits): its logits buffer is sized to it. */
export type LogitRows = 'last' | 'all';

/**
 * f32 elements of each scratch activation a Sequence allocates (beside its KV cache): the one count the engine
 * allocates from and admission (src/runtime/admission.ts) and the planner (tools/placement.ts) reserve from.
 * Logits take one row when only the last is asked for (generation), PREFILL_CHUNK rows for scoring.
 */
export function sequenceScratch(a: Architecture, logits: LogitRows, kvType: KvCacheType = 'f32') {
  const C = PREFILL_CHUNK;
  const H = a.hiddenSize;
  const qDim = a.numHeads * a.headDim;
  const kvNew = kvType === 'f32' ? 0 : C * a.numKvHeads * a.headDim; // f32 K/V rows go straight into an f32 cache
  return {
    kNew: kvNew, // a chunk's new keys before storeRows converts them into the cache
    vNew: kvNew,
    x: C * H, // residual stream
    h: C * H, // normalised
    q: C * qDim,
    attn: C * qDim,
    tmp: C * H,
    moe: C * H,
    routerLogits: C * a.numExperts,
    topIdx: a.topK, // i32
    topVal: a.topK,
    expertOut: C * a.topK * H,
    gate: C, // shared-expert gate logits
    logits: (logits === 'all' ? C : 1) * a.vocabSize,
  };
}

/** Bytes of sequenceScratch, each buffer rounded by `block` (the heap's alignment and header; none by default). */
export function sequenceScratchBytes(a: Architecture, logits: LogitRows, kvType: KvCacheType = 'f32', block: (bytes: number) => number = (b) => b): number {
  return Object.values(sequenceScratch(a, logits, kvType)).reduce((sum, n) => sum + (n ? block(n * 4) : 0), 0);
}

/** How a Sequence is built beyond its capacity. */
export interface SequenceOptions {
  /** the widest logits its forward calls ask for (default 'last': one row, all generation needs) */
  logits?: LogitRows;
  /** the KV cache's block format (default f32) */
  kvType?: KvCacheType;
}

/**
 * Per-generation state in the heap: the KV cache for `capacity` positions and scratch activations.
 * Allocated when a generation starts and released when it ends, so concurrent generations never share.
 */
export class Sequence {
  /** per layer: (capacity, nKvHead*headDim) of kvType; f32 rows are written in place by the K/V matmuls */
  readonly kCache: Mat[] = [];
  readonly vCache: Mat[] = [];
  /** Positions already in the cache. */
  length = 0;
  private readonly buffers: Ptr[] = [];
  readonly x: Ptr; // (chunk, H) residual stream
  readonly h: Ptr; // (chunk, H) normalised
  readonly q: Ptr; // (chunk, nHead*hd)
  readonly attn: Ptr; // (chunk, nHead*hd)
  readonly tmp: Ptr; // (chunk, H)
  readonly moe: Ptr; // (chunk, H)
  readonly routerLogits: Ptr; // (chunk, E)
  readonly topIdx: Ptr; // (K) i32
  readonly topVal: Ptr; // (K) f32
  readonly expertOut: Ptr; // (chunk, K, H)
  readonly gate: Ptr; // (chunk) shared-expert gate logits
  readonly logits: Ptr; // (logitRows, vocab)
  /** What forward may ask for: 'all' needs a Sequence built with { logits: 'all' }. */
  readonly logitRows: LogitRows;
  readonly kNew: Ptr; // (chunk, kvDim) new keys before storeRows converts them into a non-f32 cache (else 0)
  readonly vNew: Ptr;
  /** The KV cache's block format (KV_CACHE_TYPE). */
  readonly kvType: KvCacheType;

  constructor(private readonly k: Kernels, readonly weights: ModelWeights, readonly capacity: number, opts: SequenceOptions = {}) {
    const a = weights.arch;
    const kvDim = a.numKvHeads * a.headDim;
    this.logitRows = opts.logits ?? 'last';
    const kvType = (this.kvType = opts.kvType ?? 'f32');
    const s = sequenceScratch(a, this.logitRows, kvType);
    const f = (n: number) => {
      const p = k.heap.alloc(n * 4);
      this.buffers.push(p);
      return p;
    };
    const tensorBytes = kvTensorBytes(a, capacity, kvType); // refuses a quantized type for heads that are not whole blocks
    const cache = (): Mat => {
      const data = k.heap.alloc(tensorBytes);
      this.buffers.push(data);
      return { dtype: kvType, rows: capacity, cols: kvDim, data, scales: isQuantized(kvType) ? data + quantBytes(kvType, capacity * kvDim) : 0 };
    };
    try {
      for (let l = 0; l < a.numLayers; l++) {
        this.kCache.push(cache());
        this.vCache.push(cache());
      }
      this.kNew = s.kNew ? f(s.kNew) : 0;
      this.vNew = s.vNew ? f(s.vNew) : 0;
      this.x = f(s.x);
      this.h = f(s.h);
      this.q = f(s.q);
      this.attn = f(s.attn);
      this.tmp = f(s.tmp);
      this.moe = f(s.moe);
      this.routerLogits = f(s.routerLogits);
      this.topIdx = f(s.topIdx);
      this.topVal = f(s.topVal);
      this.expertOut = f(s.expertOut);
      this.gate = f(s.gate);
      this.logits = f(s.logits);
    } catch (e) {
      this.release();
      throw e;
    }
  }

  release(): void {
    for (const p of this.buffers.splice(0)) this.k.heap.release(p);
  }
}

export interface ForwardOptions {
  /**
   * Which rows get logits: 'last' (generation) or 'all' (scoring, the CLI's logits); 'hidden': none, the last
   * row is left final-normed in seq.h for a head that samples where the logits are (HeadExecutor.sample).
   * 'each': one row per token like 'all', computed a row at a time through a Sequence's one-row logits buffer
   * (a speculative verification pass: a handful of rows, without a PREFILL_CHUNK x vocabulary buffer).
   */
  logits: 'last' | 'all' | 'hidden' | 'each';
  /** The embedding row of the (one) token, already known (a head shard sent it with the token): not asked again. */
  embedded?: Float32Array;
  /**
   * With 'last': the row is written into this (vocab) array and returned, instead of into a new one. A generation
   * reuses one per step (it samples before the next forward): a fresh 192 KiB row per token for a 49k vocabulary
   * was most of the isolate's ArrayBuffer garbage (bench/results/memory.md).
   */
  into?: Float32Array;
}

/**
 * Run `tokens` (at most PREFILL_CHUNK) at positions seq.length.. and append them to the cache.
 * Returns the logits rows requested, copied out of the heap: 'last' -> one row, 'all' -> one per token.
 */
export async function forward(k: Kernels, seq: Sequence, experts: ExpertExecutor, tokens: readonly number[], opts: ForwardOptions): Promise<Float32Array[]> {
  const T = tokens.length;
  if (T < 1 || T > PREFILL_CHUNK) throw new RangeError(`forward takes 1..${PREFILL_CHUNK} tokens, got ${T}`);
  if (seq.length + T > seq.capacity) throw new RangeError(`sequence capacity ${seq.capacity} exceeded`);
  if (opts.logits === 'all' && seq.logitRows !== 'all') throw new RangeError("logits 'all' needs a Sequence built with { logits: 'all' }");
  const head = headFor(k, seq, experts);
  await embedTokens(k, seq.weights.arch, head, tokens, seq.x, opts.embedded);
  const pos0 = seq.length;
  for (let l = 0; l < seq.weights.arch.numLayers; l++) await forwardLayer(k, seq, experts, l, seq.x, T, pos0);
  seq.length += T;
  if (opts.logits !== 'each') return finishRows(k, seq, head, seq.x, T, opts);
  const rows: Float32Array[] = [];
  for (let t = 0; t < T; t++) rows.push(...(await finishRows(k, seq, head, seq.x + t * seq.weights.arch.hiddenSize * 4, 1, { logits: 'last' })));
  return rows;
}

/** x (T, H) = the embedding rows of `tokens` times the embedding multiplier (`embedded`: the one token's row, known). */
export async function embedTokens(k: Kernels, a: Architecture, head: HeadExecutor, tokens: readonly number[], x: Ptr, embedded?: Float32Array): Promise<void> {
  const H = a.hiddenSize;
  for (let t = 0; t < tokens.length; t++) {
    if (!(tokens[t] >= 0 && tokens[t] < a.vocabSize)) throw new RangeError(`token id ${tokens[t]} outside the vocabulary`);
  }
  if (embedded && tokens.length === 1 && embedded.length === H) k.heap.f32(x, H).set(embedded);
  else await head.embed(tokens, x);
  if (a.embeddingMultiplier !== 1) scale(k.heap.f32(x, tokens.length * H), a.embeddingMultiplier);
}

/**
 * One layer for T (<= PREFILL_CHUNK) tokens at positions pos0..pos0+T-1: the residual rows at `x` are updated in
 * place and the layer's keys/values written at those positions; the cache must hold this layer's earlier positions.
 * forward() runs it token chunk by chunk; a layer-major prefill (prefill-layers.ts) runs every chunk of one layer
 * first. Each kernel call sees the same rows either way, so both give the same bits.
 */
export async function forwardLayer(k: Kernels, seq: Sequence, experts: ExpertExecutor, l: number, x: Ptr, T: number, pos0: number): Promise<void> {
  const w = seq.weights;
  const a = w.arch;
  const H = a.hiddenSize;
  const hd = a.headDim;
  const qDim = a.numHeads * hd;
  const kvDim = a.numKvHeads * hd;
  const heap = k.heap;
  const attnScale = a.attentionMultiplier ?? 1 / Math.sqrt(hd);
  const L = w.layers[l];
  // new keys/values land straight in an f32 cache; other types get them converted by storeRows once roped
  const f32Cache = seq.kvType === 'f32';
  const kOut = f32Cache ? seq.kCache[l].data + pos0 * kvDim * 4 : seq.kNew;
  const vOut = f32Cache ? seq.vCache[l].data + pos0 * kvDim * 4 : seq.vNew;

  // attention block
  k.rmsNorm(x, L.attnNorm.data, seq.h, H, T, a.rmsNormEps);
  k.matmul(L.q, seq.h, seq.q, T);
  k.matmul(L.k, seq.h, kOut, T);
  k.matmul(L.v, seq.h, vOut, T);
  if (L.qBias) addRows(k, seq.q, L.qBias.data, qDim, T);
  if (L.kBias) addRows(k, kOut, L.kBias.data, kvDim, T);
  if (L.vBias) addRows(k, vOut, L.vBias.data, kvDim, T);
  if (a.qkNorm === 'full') {
    k.rmsNorm(seq.q, L.qNorm!.data, seq.q, qDim, T, a.rmsNormEps);
    k.rmsNorm(kOut, L.kNorm!.data, kOut, kvDim, T, a.rmsNormEps);
  } else if (a.qkNorm === 'per_head') {
    k.rmsNorm(seq.q, L.qNorm!.data, seq.q, hd, T * a.numHeads, a.rmsNormEps);
    k.rmsNorm(kOut, L.kNorm!.data, kOut, hd, T * a.numKvHeads, a.rmsNormEps);
  }
  k.rope(seq.q, T, a.numHeads, hd, hd, pos0, a.ropeTheta, a.ropeLayout);
  k.rope(kOut, T, a.numKvHeads, hd, hd, pos0, a.ropeTheta, a.ropeLayout);
  if (!f32Cache) {
    k.storeRows(kOut, seq.kCache[l], pos0, T);
    k.storeRows(vOut, seq.vCache[l], pos0, T);
  }
  k.attention(seq.q, seq.kCache[l], seq.vCache[l], seq.attn, T, pos0, { nHead: a.numHeads, nKvHead: a.numKvHeads, headDim: hd, scale: attnScale });
  k.matmul(L.o, seq.attn, seq.tmp, T);
  k.addScaled(x, seq.tmp, a.residualMultiplier, T * H);

  // MoE block
  k.rmsNorm(x, L.ffnNorm.data, seq.h, H, T, a.rmsNormEps);
  const routes = route(k, seq, L.router, T);
  await experts.run({ layer: l, x: seq.h, nTok: T, routes, scores: seq.routerLogits, out: seq.expertOut });
  combineExperts(k, seq, routes, T);
  if (L.shared) {
    k.ffnSwiglu(L.shared.gate, L.shared.up, L.shared.down, seq.h, seq.tmp, T);
    if (L.sharedGate) {
      k.matmul(L.sharedGate, seq.h, seq.gate, T);
      const g = heap.f32(seq.gate, T);
      for (let t = 0; t < T; t++) k.addScaled(seq.moe + t * H * 4, seq.tmp + t * H * 4, 1 / (1 + Math.exp(-g[t])), H);
    } else {
      k.addScaled(seq.moe, seq.tmp, 1, T * H);
    }
  }
  k.addScaled(x, seq.moe, a.residualMultiplier, T * H);
}

/**
 * The end of a forward pass over the T residual rows at `x`: the final norm of the rows `opts.logits` asks for
 * (into seq.h), then their logits, copied out of the heap and scaled; 'hidden' stops after the norm.
 */
export async function finishRows(k: Kernels, seq: Sequence, head: HeadExecutor, x: Ptr, T: number, opts: ForwardOptions): Promise<Float32Array[]> {
  const a = seq.weights.arch;
  const H = a.hiddenSize;
  const first = opts.logits === 'all' ? 0 : T - 1; // 'last' and 'hidden': the last row
  const rows = T - first;
  k.rmsNorm(x + first * H * 4, seq.weights.outputNorm.data, seq.h, H, rows, a.rmsNormEps);
  if (opts.logits === 'hidden') return [];
  await head.logits(seq.h, rows, seq.logits);
  const all = k.heap.f32(seq.logits, rows * a.vocabSize);
  const out: Float32Array[] = [];
  for (let r = 0; r < rows; r++) {
    const src = all.subarray(r * a.vocabSize, (r + 1) * a.vocabSize);
    const row = opts.into && rows === 1 ? opts.into : new Float32Array(a.vocabSize);
    row.set(src);
    scaleLogits(row, a);
    out.push(row);
  }
  return out;
}

/** The head a forward pass uses: the expert executor's (a head shard holds it), else the weights' own. */
export function headFor(k: Kernels, seq: Sequence, experts: ExpertExecutor): HeadExecutor {
  return experts.head ?? headOf(k, seq.weights);
}

/** The weights' own head; a model loaded without it needs an executor that brings one (a head shard). */
function headOf(k: Kernels, w: ModelWeights): HeadExecutor {
  if (!w.embed || !w.output) throw new Error('this model was loaded without its embedding / output head, and no head executor was given');
  let head = localHeads.get(w.embed);
  if (!head) localHeads.set(w.embed, (head = localHead(k, w.embed, w.output)));
  return head;
}

// one local head per loaded embedding (a Mat lives in one kernel heap), not one per forward step
const localHeads = new WeakMap<Mat, HeadExecutor>();

/**
 * Router: logits (T, E) = router @ h, then per token softmax + top-k (renormalised when configured). The scores
 * stay in seq.routerLogits (probabilities, or logits under routerTopKBeforeSoftmax) for the batch's `scores`.
 */
function route(k: Kernels, seq: Sequence, router: import('../kernels/types').Mat, T: number): ExpertRoute[][] {
  const a = seq.weights.arch;
  const E = a.numExperts;
  const K = a.topK;
  k.matmul(router, seq.h, seq.routerLogits, T);
  if (!a.routerTopKBeforeSoftmax) k.softmax(seq.routerLogits, E, T);
  const routes: ExpertRoute[][] = [];
  for (let t = 0; t < T; t++) {
    k.topK(seq.routerLogits + t * E * 4, E, K, seq.topIdx, seq.topVal);
    const idx = k.heap.i32(seq.topIdx, K);
    const weights = routeWeights(k.heap.f32(seq.topVal, K), a);
    routes.push(Array.from(idx, (expert, i) => ({ expert, weight: weights[i] })));
  }
  return routes;
}

/**
 * One token's routing weights from its top-k values (probabilities, or logits under routerTopKBeforeSoftmax): a
 * softmax over the chosen logits (== renormalised top-k probabilities), renormalised probabilities (normTopKProb), or
 * the values as they are. The one definition: the webgpu trunk's host step uses it too.
 */
export function routeWeights(topValues: ArrayLike<number>, a: Pick<Architecture, 'routerTopKBeforeSoftmax' | 'normTopKProb'>): number[] {
  const val = Array.from(topValues);
  if (a.routerTopKBeforeSoftmax) {
    const m = Math.max(...val);
    const e = val.map((v) => Math.fround(Math.exp(v - m)));
    const s = e.reduce((x, y) => x + y, 0);
    return e.map((v) => Math.fround(v / s));
  }
  if (a.normTopKProb) {
    const s = Math.fround(val.reduce((x, y) => Math.fround(x + y), 0));
    return val.map((v) => Math.fround(v / s));
  }
  return val;
}

/** moe (T, H) = sum over slots, in slot order, of weight * expertOut[t][slot]. */
function combineExperts(k: Kernels, seq: Sequence, routes: readonly (readonly ExpertRoute[])[], T: number): void {
  const H = seq.weights.arch.hiddenSize;
  const K = seq.weights.arch.topK;
  k.heap.f32(seq.moe, T * H).fill(0);
  for (let t = 0; t < T; t++) {
    for (let s = 0; s < K; s++) k.addScaled(seq.moe + t * H * 4, seq.expertOut + (t * K + s) * H * 4, routes[t][s].weight, H);
  }
}

function addRows(k: Kernels, x: Ptr, bias: Ptr, n: number, T: number): void {
  for (let t = 0; t < T; t++) k.addScaled(x + t * n * 4, bias, 1, n);
}

function scale(v: Float32Array, s: number): void {
  for (let i = 0; i < v.length; i++) v[i] *= s;
}

// Placement arithmetic for `npm run cli -- plan`: what a Worker isolate must hold for a model (trunk, KV
// cache, per-generation scratch, runtime and tokenizer) and how many hot experts per layer fit beside it, at a
// given quantization. Sizes come from the architecture alone (tensor shapes x block formats of
// src/format/quant.ts, as the converter stores them and the engine holds them), so a published config.json
// is enough: no weights needed.
import { architectureFromHf } from './convert/hf-config';
import { ArchitectureSchema, type Architecture } from '../src/format/manifest';
import { canQuantizeRows, memoryBytes, shardBytes, type DType } from '../src/format/quant';
import { sequenceScratchBytes } from '../src/engine/forward';
import { kvCacheBytes, type KvCacheType } from '../src/engine/kv-cache';

/** Cloudflare Workers: memory of one isolate (JS heap and WebAssembly memory together). */
export const ISOLATE_BYTES = 128 * 2 ** 20;
/**
 * Estimate, not measured in workerd: V8 isolate baseline, the Worker's compiled JS and the kernels' WASM
 * code, request and stream buffers. The bundle itself is 1.3 MiB, 0.25 MiB gzipped (test/process/deploy/bundle.test.ts).
 */
export const RUNTIME_BYTES = 8 * 2 ** 20;
/**
 * The most bytes of trunk.bin in JS memory at once while it streams into the heap (src/engine/weights.ts
 * streamIntoHeap): one chunk of the object's stream. The folder source reads 1 MiB chunks (source-fs.ts); R2's
 * body stream hands out smaller ones in workerd (see docs/placement.md), so 1 MiB bounds both.
 */
export const LOAD_CHUNK_BYTES = 2 ** 20;
/**
 * JS heap the Worker's tokenizer keeps per vocabulary entry: the compact byte-level BPE (src/engine/byte-level-bpe.ts)
 * keeps 2.6 MiB for granite's 49,155 entries in Node 22 (V8, as workerd): 56 B each. A tokenizer configuration it
 * does not reproduce falls back to @huggingface/tokenizers, which keeps ~340 B per entry (measured at 339 B for 50k
 * and 341 B for 152k synthetic entries).
 */
export const TOKENIZER_BYTES_PER_TOKEN = 56;

type Group = 'embedding' | 'attention' | 'norms' | 'routers' | 'shared' | 'output';

/** One tensor as the converter writes it: matrices take the quant, vectors and routers stay f32. */
export interface TensorSize {
  readonly group: Group;
  readonly shape: readonly number[];
  readonly kind: 'matrix' | 'f32';
}

/** The trunk's tensors (everything but the routed experts), following the manifest's tensor names. */
export function trunkTensors(a: Architecture): TensorSize[] {
  const h = a.hiddenSize;
  const q = a.numHeads * a.headDim;
  const kv = a.numKvHeads * a.headDim;
  const out: TensorSize[] = [{ group: 'embedding', shape: [a.vocabSize, h], kind: 'matrix' }];
  for (let l = 0; l < a.numLayers; l++) {
    out.push(
      { group: 'norms', shape: [h], kind: 'f32' }, // attn_norm
      { group: 'norms', shape: [h], kind: 'f32' }, // ffn_norm
      { group: 'attention', shape: [q, h], kind: 'matrix' },
      { group: 'attention', shape: [kv, h], kind: 'matrix' },
      { group: 'attention', shape: [kv, h], kind: 'matrix' },
      { group: 'attention', shape: [h, q], kind: 'matrix' },
      { group: 'routers', shape: [a.numExperts, h], kind: 'f32' },
    );
    if (a.qkvBias) out.push({ group: 'norms', shape: [q], kind: 'f32' }, { group: 'norms', shape: [kv], kind: 'f32' }, { group: 'norms', shape: [kv], kind: 'f32' });
    if (a.qkNorm === 'full') out.push({ group: 'norms', shape: [q], kind: 'f32' }, { group: 'norms', shape: [kv], kind: 'f32' });
    if (a.qkNorm === 'per_head') out.push({ group: 'norms', shape: [a.headDim], kind: 'f32' }, { group: 'norms', shape: [a.headDim], kind: 'f32' });
    if (a.sharedExpertFfnSize > 0) {
      const s = a.sharedExpertFfnSize;
      out.push({ group: 'shared', shape: [s, h], kind: 'matrix' }, { group: 'shared', shape: [s, h], kind: 'matrix' }, { group: 'shared', shape: [h, s], kind: 'matrix' });
    }
    if (a.sharedExpertGate) out.push({ group: 'shared', shape: [1, h], kind: 'f32' });
  }
  out.push({ group: 'norms', shape: [h], kind: 'f32' }); // output_norm
  if (!a.tieWordEmbeddings) out.push({ group: 'output', shape: [a.vocabSize, h], kind: 'matrix' });
  return out;
}

/** gate, up, down of one routed expert. */
export function expertTensors(a: Architecture): TensorSize[] {
  const [h, f] = [a.hiddenSize, a.expertFfnSize];
  return [
    { group: 'shared', shape: [f, h], kind: 'matrix' },
    { group: 'shared', shape: [f, h], kind: 'matrix' },
    { group: 'shared', shape: [h, f], kind: 'matrix' },
  ];
}

/** The dtype the converter picks: the quant for matrices whose rows are whole blocks, f32 otherwise. */
function dtypeOf(t: TensorSize, quant: DType): DType {
  return t.kind === 'matrix' && canQuantizeRows(quant, t.shape[t.shape.length - 1]) ? quant : 'f32';
}

const count = (t: TensorSize) => t.shape.reduce((x, y) => x * y, 1);
/** Bytes in the WASM heap (quant scales widened to f32). */
export const heapBytes = (ts: readonly TensorSize[], quant: DType) => ts.reduce((s, t) => s + memoryBytes(dtypeOf(t, quant), count(t)), 0);
/** Bytes in R2 (scales as f16). */
export const storedBytes = (ts: readonly TensorSize[], quant: DType) => ts.reduce((s, t) => s + shardBytes(dtypeOf(t, quant), count(t)), 0);

export interface Quants {
  /** matrices of the trunk (embeddings, attention, shared experts, output) */
  readonly trunk: DType;
  readonly experts: DType;
}

export interface PlaceOptions {
  /** positions of one generation's KV cache (default: the model's context length) */
  context?: number;
  /** count the tokenizer's JS heap (default true; a model converted without tokenizer files has none) */
  tokenizer?: boolean;
  /** element type of the KV cache (default f32; `plan` passes KV_CACHE_TYPE's default) */
  kvCacheType?: KvCacheType;
}

export interface Placement {
  readonly quant: Quants;
  readonly context: number;
  /** heap bytes of the trunk by part; `shared` = shared experts (always resident) */
  readonly trunk: Readonly<Record<Group, number>> & { readonly total: number };
  /** trunk.bin as stored (streamed into the heap at load, one chunk at a time) */
  readonly trunkStored: number;
  readonly expertHeap: number;
  readonly expertStored: number;
  readonly kvCacheType: KvCacheType;
  /** KV cache of one generation at `context` positions: layers x 2 x ctx x kvHeads x headDim at kvCacheType (src/engine/kv-cache.ts) */
  readonly kvCache: number;
  readonly kvPerToken: number;
  /** one generation's scratch activations (engine Sequence: prefill chunk of PREFILL_CHUNK tokens, one logits row) */
  readonly scratch: number;
  readonly runtime: number;
  readonly tokenizer: number;
  /** what the isolate holds with no hot expert: trunk + KV + scratch + runtime + tokenizer */
  readonly fixed: number;
  /** model load: runtime + tokenizer + trunk in the heap + one chunk of trunk.bin's stream */
  readonly loadPeak: number;
  readonly budget: number;
  /** hot experts per layer within `budget` (the same number in every layer), at most numExperts */
  readonly hotPerLayer: number;
  /** HOT_BUDGET_MB that holds them */
  readonly hotBytes: number;
  /** the WASM heap with them: trunk + hot experts + one generation's KV cache and scratch (ISOLATE_MEMORY_MB) */
  readonly heapBytes: number;
  /** longest context with no hot expert inside the isolate (128 MiB), 0 if the trunk alone does not fit */
  readonly maxContext: number;
  /** fixed and load peak both within the 128 MiB isolate */
  readonly fitsEdge: boolean;
}

export function place(a: Architecture, quant: Quants, budgetBytes: number, o: PlaceOptions = {}): Placement {
  const context = o.context ?? a.contextLength;
  const ts = trunkTensors(a);
  const trunk = { embedding: 0, attention: 0, norms: 0, routers: 0, shared: 0, output: 0, total: 0 };
  for (const t of ts) trunk[t.group] += heapBytes([t], quant.trunk);
  trunk.total = heapBytes(ts, quant.trunk);
  const kvCacheType = o.kvCacheType ?? 'f32';
  const kvPerToken = kvCacheBytes(a, 1, kvCacheType);
  const scratch = sequenceScratchBytes(a, 'last', kvCacheType); // what a generation's Sequence allocates beside its KV cache
  const tokenizer = o.tokenizer === false ? 0 : a.vocabSize * TOKENIZER_BYTES_PER_TOKEN;
  const kvCache = kvCacheBytes(a, context, kvCacheType);
  const fixed = trunk.total + kvCache + scratch + RUNTIME_BYTES + tokenizer;
  const trunkStored = storedBytes(ts, quant.trunk);
  const loadPeak = RUNTIME_BYTES + tokenizer + trunk.total + Math.min(LOAD_CHUNK_BYTES, trunkStored);
  const expertHeap = heapBytes(expertTensors(a), quant.experts);
  const hotPerLayer = Math.max(0, Math.min(a.numExperts, Math.floor((budgetBytes - fixed) / (a.numLayers * expertHeap))));
  const room = ISOLATE_BYTES - (trunk.total + scratch + RUNTIME_BYTES + tokenizer);
  return {
    quant,
    context,
    trunk,
    trunkStored,
    expertHeap,
    expertStored: storedBytes(expertTensors(a), quant.experts),
    kvCacheType,
    kvCache,
    kvPerToken,
    scratch,
    runtime: RUNTIME_BYTES,
    tokenizer,
    fixed,
    loadPeak,
    budget: budgetBytes,
    hotPerLayer,
    hotBytes: hotPerLayer * a.numLayers * expertHeap,
    heapBytes: trunk.total + hotPerLayer * a.numLayers * expertHeap + kvCache + scratch,
    maxContext: Math.max(0, Math.min(a.contextLength, Math.floor(room / kvPerToken))),
    fitsEdge: fixed <= ISOLATE_BYTES && loadPeak <= ISOLATE_BYTES,
  };
}

/**
 * HF config.json -> Architecture: the converter's own reading (tools/convert/hf-config.ts) where it supports the
 * model_type; otherwise the size-relevant keys only (enough to plan, not to run), flagged `sizesOnly`.
 */
export function architectureForPlan(config: Record<string, unknown>): { arch: Architecture; sizesOnly: boolean } {
  try {
    return { arch: architectureFromHf(config), sizesOnly: false };
  } catch (e) {
    if (!/is not supported/.test((e as Error).message)) throw e;
    return { arch: sizingArchitecture(config), sizesOnly: true };
  }
}

function sizingArchitecture(c: Record<string, unknown>): Architecture {
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Error(`config.json: ${key} is missing or not an integer`);
    return v;
  };
  const type = String(c.model_type);
  const heads = int('num_attention_heads');
  const hidden = int('hidden_size');
  const shared = type === 'qwen2_moe' ? int('shared_expert_intermediate_size', 0) : 0;
  return ArchitectureSchema.parse({
    modelType: ['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'granitemoe'].includes(type) ? type : 'mixtral',
    vocabSize: int('vocab_size'),
    hiddenSize: hidden,
    numLayers: int('num_hidden_layers'),
    numHeads: heads,
    numKvHeads: int('num_key_value_heads', heads),
    headDim: int('head_dim', Math.floor(hidden / heads)),
    expertFfnSize: typeof c.moe_intermediate_size === 'number' ? int('moe_intermediate_size') : int('intermediate_size'),
    numExperts: typeof c.num_local_experts === 'number' ? int('num_local_experts') : int('num_experts'),
    topK: int('num_experts_per_tok'),
    normTopKProb: c.norm_topk_prob !== false,
    rmsNormEps: typeof c.rms_norm_eps === 'number' ? c.rms_norm_eps : 1e-6,
    ropeTheta: typeof c.rope_theta === 'number' ? c.rope_theta : 10000,
    ropeLayout: 'neox',
    contextLength: int('max_position_embeddings'),
    tieWordEmbeddings: c.tie_word_embeddings === true,
    qkvBias: type === 'qwen2_moe' || c.attention_bias === true,
    qkNorm: type === 'olmoe' ? 'full' : type === 'qwen3_moe' ? 'per_head' : 'none',
    sharedExpertFfnSize: shared,
    sharedExpertGate: shared > 0,
  });
}

/** Heap bytes of the token embedding and the output head (one matrix when tied): what a head shard takes off the front. */
export function headBytes(p: Pick<Placement, 'trunk'>): number {
  return p.trunk.embedding + p.trunk.output;
}

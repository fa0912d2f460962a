// Hugging Face config.json -> `Architecture`, and HF checkpoint tensor names -> canonical manifest names.
// One entry per HF `model_type` in `families`; a new architecture is a new entry (flags + tensor names),
// never a new code path in the engine.
import type { z } from 'zod';
import { ArchitectureSchema, tensorNames as T, type Architecture } from '../../src/format/manifest';
import {
  bool, contextLength, everyLayerSparse, headDim, HfConfigError, int, noRopeScaling, num, requireNeutral, ropeTheta, siluOnly,
  type HfConfig,
} from './hf-keys';

export { HfConfigError } from './hf-keys';

/**
 * How a tensor is stored: 1-D `norm`/`bias` and `router` stay f32 (as llama.cpp keeps them),
 * `matrix` takes the requested quant.
 */
export type TensorKind = 'norm' | 'bias' | 'router' | 'matrix';

/**
 * Rows of one block of a 3-D HF tensor [blocks, rows, cols] (GraniteMoe keeps every expert in one tensor):
 * block `block`, rows [rowStart, rowStart + shape[0]). The block's rows are contiguous, so this is one range.
 */
export interface HfSlice {
  hfShape: [number, number, number];
  block: number;
  rowStart: number;
}

export interface TensorSource {
  /** canonical name (manifest `tensors` key) */
  name: string;
  /** name in the HF checkpoint */
  hf: string;
  /** [rows, cols] for y = W x (an HF Linear weight [out, in] already is), or [n] */
  shape: number[];
  kind: TensorKind;
  /** set when the tensor is part of a larger HF tensor; `shape` is then the part's shape */
  slice?: HfSlice;
  /** set for routed-expert tensors, which live in experts/<layer>/<expert>.bin */
  expert?: { layer: number; expert: number };
}

/** The shape the HF checkpoint must hold for `src` (the whole tensor when sliced). */
export function hfShape(src: TensorSource): number[] {
  return src.slice ? [...src.slice.hfShape] : src.shape;
}

/** Elements [start, start + count) of the flattened HF tensor that make up `src`. */
export function hfElementRange(src: TensorSource): { start: number; count: number } {
  const count = src.shape.reduce((a, b) => a * b, 1);
  if (!src.slice) return { start: 0, count };
  const [, rows, cols] = src.slice.hfShape;
  return { start: (src.slice.block * rows + src.slice.rowStart) * cols, count };
}

interface Family {
  /** flags a family leaves out take the schema's neutral defaults */
  architecture(c: HfConfig): z.input<typeof ArchitectureSchema>;
  tensors(a: Architecture): TensorSource[];
}

/** An HF tensor, or a slice of one, that feeds a canonical tensor. */
type HfRef = string | { hf: string; slice: HfSlice };

/** Where a family keeps its MoE tensors, relative to `model.layers.<l>`. */
interface MoeLayout {
  router: string;
  /** gate (I, H), up (I, H), down (H, I) of routed expert e */
  expert(a: Architecture, l: number, e: number): [HfRef, HfRef, HfRef];
  /** shared expert and its sigmoid gate (qwen2_moe) */
  shared?: { gate: string; up: string; down: string; sigmoidGate: string };
}

const families: Record<Architecture['modelType'], Family> = {
  mixtral: {
    architecture: (c) => ({
      ...common(c, { rmsNormEps: 1e-5, ropeTheta: 1e6 }),
      modelType: 'mixtral',
      expertFfnSize: int(c, 'intermediate_size'),
      numExperts: int(c, 'num_local_experts'),
      topK: int(c, 'num_experts_per_tok', 2),
      normTopKProb: true, // Mixtral always renormalises the top-k softmax weights
    }),
    tensors: (a) => decoderTensors(a, {
      router: 'block_sparse_moe.gate.weight',
      expert: (_, l, e) => {
        const q = `model.layers.${l}.block_sparse_moe.experts.${e}`;
        return [`${q}.w1.weight`, `${q}.w3.weight`, `${q}.w2.weight`];
      },
    }),
  },

  // Qwen1.5-MoE / Qwen2-MoE: q/k/v bias, a shared expert on every token scaled by sigmoid(w . x)
  qwen2_moe: {
    architecture: (c) => {
      everyLayerSparse(c);
      const shared = int(c, 'shared_expert_intermediate_size', 5632); // HF's default
      return {
        ...common(c, { rmsNormEps: 1e-6, ropeTheta: 1e4 }),
        modelType: 'qwen2_moe',
        expertFfnSize: int(c, 'moe_intermediate_size', 1408),
        numExperts: int(c, 'num_experts', 60),
        topK: int(c, 'num_experts_per_tok', 4),
        normTopKProb: bool(c, 'norm_topk_prob', false),
        qkvBias: bool(c, 'qkv_bias', true),
        sharedExpertFfnSize: shared,
        sharedExpertGate: shared > 0,
      };
    },
    tensors: (a) => decoderTensors(a, {
      router: 'mlp.gate.weight',
      expert: (_, l, e) => projections(`model.layers.${l}.mlp.experts.${e}`),
      shared: { gate: 'mlp.shared_expert.gate_proj.weight', up: 'mlp.shared_expert.up_proj.weight', down: 'mlp.shared_expert.down_proj.weight', sigmoidGate: 'mlp.shared_expert_gate.weight' },
    }),
  },

  // Qwen3-MoE: RMSNorm over each head of q and k (weights of head_dim), head_dim independent of hidden/heads
  qwen3_moe: {
    architecture: (c) => {
      everyLayerSparse(c);
      requireNeutral(c, 'attention_bias', [false], 'q/k/v/o biases');
      return {
        ...common(c, { rmsNormEps: 1e-6, ropeTheta: 1e4 }),
        modelType: 'qwen3_moe',
        expertFfnSize: int(c, 'moe_intermediate_size', 768),
        numExperts: int(c, 'num_experts', 128),
        topK: int(c, 'num_experts_per_tok', 8),
        normTopKProb: bool(c, 'norm_topk_prob', false),
        qkNorm: 'per_head',
      };
    },
    tensors: (a) => decoderTensors(a, { router: 'mlp.gate.weight', expert: (_, l, e) => projections(`model.layers.${l}.mlp.experts.${e}`) }),
  },

  // OLMoE: RMSNorm over the full projected q and k (before the head split)
  olmoe: {
    architecture: (c) => {
      requireNeutral(c, 'clip_qkv', [null], 'q/k/v clipping');
      requireNeutral(c, 'attention_bias', [false], 'q/k/v/o biases');
      return {
        ...common(c, { rmsNormEps: 1e-5, ropeTheta: 1e4 }),
        modelType: 'olmoe',
        expertFfnSize: int(c, 'intermediate_size'),
        numExperts: int(c, 'num_experts', 64),
        topK: int(c, 'num_experts_per_tok', 8),
        normTopKProb: bool(c, 'norm_topk_prob', false),
        qkNorm: 'full',
      };
    },
    tensors: (a) => decoderTensors(a, { router: 'mlp.gate.weight', expert: (_, l, e) => projections(`model.layers.${l}.mlp.experts.${e}`) }),
  },

  // GraniteMoe: scalar multipliers on embeddings, attention scores, residual branches and logits; the router
  // takes the top-k logits and softmaxes those; experts are stored merged (input_linear = [gate; up])
  granitemoe: {
    architecture: (c) => {
      requireNeutral(c, 'attention_bias', [false], 'q/k/v/o biases');
      return {
        ...common(c, { rmsNormEps: 1e-6, ropeTheta: 1e4 }),
        modelType: 'granitemoe',
        expertFfnSize: int(c, 'intermediate_size'),
        numExperts: int(c, 'num_local_experts'),
        topK: int(c, 'num_experts_per_tok', 2),
        normTopKProb: true, // softmax over the k chosen logits: weights sum to 1
        routerTopKBeforeSoftmax: true,
        embeddingMultiplier: num(c, 'embedding_multiplier', 1),
        attentionMultiplier: num(c, 'attention_multiplier', 1), // HF's default is 1.0, not 1/sqrt(hd)
        residualMultiplier: num(c, 'residual_multiplier', 1),
        logitsScaling: num(c, 'logits_scaling', 1),
      };
    },
    tensors: (a) => decoderTensors(a, {
      router: 'block_sparse_moe.router.layer.weight',
      expert: (a, l, e) => {
        const [E, I, H] = [a.numExperts, a.expertFfnSize, a.hiddenSize];
        const p = `model.layers.${l}.block_sparse_moe`;
        const input = (rowStart: number): HfRef => ({ hf: `${p}.input_linear.weight`, slice: { hfShape: [E, 2 * I, H], block: e, rowStart } });
        return [input(0), input(I), { hf: `${p}.output_linear.weight`, slice: { hfShape: [E, H, I], block: e, rowStart: 0 } }];
      },
    }),
  },
};

/** Fields every family reads the same way; HF's per-model defaults differ only in eps and rope base. */
function common(c: HfConfig, defaults: { rmsNormEps: number; ropeTheta: number }) {
  noRopeScaling(c);
  siluOnly(c);
  const heads = int(c, 'num_attention_heads');
  return {
    vocabSize: int(c, 'vocab_size'),
    hiddenSize: int(c, 'hidden_size'),
    numLayers: int(c, 'num_hidden_layers'),
    numHeads: heads,
    numKvHeads: int(c, 'num_key_value_heads', heads),
    headDim: headDim(c),
    rmsNormEps: num(c, 'rms_norm_eps', defaults.rmsNormEps),
    ropeTheta: ropeTheta(c, defaults.ropeTheta),
    ropeLayout: 'neox' as const, // HF applies rotate_half to HF-layout q/k weights
    contextLength: contextLength(c),
    tieWordEmbeddings: bool(c, 'tie_word_embeddings', false),
  };
}

function projections(prefix: string): [string, string, string] {
  return [`${prefix}.gate_proj.weight`, `${prefix}.up_proj.weight`, `${prefix}.down_proj.weight`];
}

/** The decoder-only layout every family shares (HF Llama naming), plus the family's MoE tensors. */
function decoderTensors(a: Architecture, moe: MoeLayout): TensorSource[] {
  const out: TensorSource[] = [];
  const [h, hd] = [a.hiddenSize, a.headDim];
  const qDim = a.numHeads * hd;
  const kvDim = a.numKvHeads * hd;
  const ref = (r: HfRef) => (typeof r === 'string' ? { hf: r } : r);
  out.push({ name: T.tokenEmbedding, hf: 'model.embed_tokens.weight', shape: [a.vocabSize, h], kind: 'matrix' });
  for (let l = 0; l < a.numLayers; l++) {
    const p = `model.layers.${l}`;
    const attn = `${p}.self_attn`;
    out.push(
      { name: T.attnNorm(l), hf: `${p}.input_layernorm.weight`, shape: [h], kind: 'norm' },
      { name: T.attnQ(l), hf: `${attn}.q_proj.weight`, shape: [qDim, h], kind: 'matrix' },
      { name: T.attnK(l), hf: `${attn}.k_proj.weight`, shape: [kvDim, h], kind: 'matrix' },
      { name: T.attnV(l), hf: `${attn}.v_proj.weight`, shape: [kvDim, h], kind: 'matrix' },
    );
    if (a.qkvBias) {
      out.push(
        { name: T.attnQBias(l), hf: `${attn}.q_proj.bias`, shape: [qDim], kind: 'bias' },
        { name: T.attnKBias(l), hf: `${attn}.k_proj.bias`, shape: [kvDim], kind: 'bias' },
        { name: T.attnVBias(l), hf: `${attn}.v_proj.bias`, shape: [kvDim], kind: 'bias' },
      );
    }
    if (a.qkNorm !== 'none') {
      // 'full': one weight per projected element; 'per_head': one head_dim weight shared by every head
      const [qn, kn] = a.qkNorm === 'full' ? [qDim, kvDim] : [hd, hd];
      out.push(
        { name: T.attnQNorm(l), hf: `${attn}.q_norm.weight`, shape: [qn], kind: 'norm' },
        { name: T.attnKNorm(l), hf: `${attn}.k_norm.weight`, shape: [kn], kind: 'norm' },
      );
    }
    out.push(
      { name: T.attnOutput(l), hf: `${attn}.o_proj.weight`, shape: [h, qDim], kind: 'matrix' },
      { name: T.ffnNorm(l), hf: `${p}.post_attention_layernorm.weight`, shape: [h], kind: 'norm' },
      { name: T.router(l), hf: `${p}.${moe.router}`, shape: [a.numExperts, h], kind: 'router' },
    );
    if (moe.shared && a.sharedExpertFfnSize > 0) {
      const s = moe.shared;
      const f = a.sharedExpertFfnSize;
      out.push(
        { name: T.sharedGate(l), hf: `${p}.${s.gate}`, shape: [f, h], kind: 'matrix' },
        { name: T.sharedUp(l), hf: `${p}.${s.up}`, shape: [f, h], kind: 'matrix' },
        { name: T.sharedDown(l), hf: `${p}.${s.down}`, shape: [h, f], kind: 'matrix' },
      );
      // (1, H): a router-like row, kept f32 as llama.cpp keeps ffn_gate_inp_shexp
      if (a.sharedExpertGate) out.push({ name: T.sharedExpertGate(l), hf: `${p}.${s.sigmoidGate}`, shape: [1, h], kind: 'router' });
    }
    for (let e = 0; e < a.numExperts; e++) {
      const expert = { layer: l, expert: e };
      const f = a.expertFfnSize;
      const [gate, up, down] = moe.expert(a, l, e).map(ref);
      out.push(
        { name: T.expertGate(l, e), ...gate, shape: [f, h], kind: 'matrix', expert },
        { name: T.expertUp(l, e), ...up, shape: [f, h], kind: 'matrix', expert },
        { name: T.expertDown(l, e), ...down, shape: [h, f], kind: 'matrix', expert },
      );
    }
  }
  out.push({ name: T.outputNorm, hf: 'model.norm.weight', shape: [h], kind: 'norm' });
  if (!a.tieWordEmbeddings) out.push({ name: T.output, hf: 'lm_head.weight', shape: [a.vocabSize, h], kind: 'matrix' });
  return out;
}

/** The HF model_types this converter and engine support. */
export const SUPPORTED_MODEL_TYPES = Object.keys(families) as Architecture['modelType'][];

function family(config: HfConfig): Family {
  const type = config.model_type;
  const f = typeof type === 'string' && Object.hasOwn(families, type) ? families[type as Architecture['modelType']] : undefined;
  if (!f) throw new HfConfigError(`model_type ${JSON.stringify(type)} is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
  return f;
}

/** Normalise an HF config.json object into a validated, frozen `Architecture`. */
export function architectureFromHf(config: unknown): Architecture {
  if (typeof config !== 'object' || config === null) throw new HfConfigError('not a JSON object');
  const a = family(config as HfConfig).architecture(config as HfConfig);
  const r = ArchitectureSchema.safeParse(a);
  if (!r.success) throw new HfConfigError(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const arch = r.data;
  if (arch.numHeads % arch.numKvHeads !== 0) throw new HfConfigError(`num_attention_heads ${arch.numHeads} is not a multiple of num_key_value_heads ${arch.numKvHeads}`);
  if (arch.topK > arch.numExperts) throw new HfConfigError(`num_experts_per_tok ${arch.topK} exceeds the ${arch.numExperts} experts`);
  if (arch.headDim % 2 !== 0) throw new HfConfigError(`head_dim ${arch.headDim} is odd, RoPE needs pairs`);
  return Object.freeze(arch);
}

/** Every tensor of the model: where it is in the HF checkpoint and its canonical name and shape. */
export function hfTensorSources(arch: Architecture): TensorSource[] {
  const f = families[arch.modelType];
  if (!f) throw new HfConfigError(`model_type ${arch.modelType} is not supported`);
  return f.tensors(arch);
}

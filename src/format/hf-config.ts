// Hugging Face config.json -> `Architecture`, and HF checkpoint tensor names -> canonical manifest names.
// One entry per HF `model_type` in `families`; a new architecture is a new entry, not a new code path.
import { ArchitectureSchema, tensorNames as T, type Architecture } from './manifest';

export class HfConfigError extends Error {
  constructor(detail: string) {
    super(`unsupported or invalid config.json: ${detail}`);
    this.name = 'HfConfigError';
  }
}

/**
 * How a tensor is stored: 1-D `norm`/`bias` and `router` stay f32 (as llama.cpp keeps them),
 * `matrix` takes the requested quant.
 */
export type TensorKind = 'norm' | 'bias' | 'router' | 'matrix';

export interface TensorSource {
  /** canonical name (manifest `tensors` key) */
  name: string;
  /** name in the HF checkpoint */
  hf: string;
  /** [rows, cols] for y = W x (an HF Linear weight [out, in] already is), or [n] */
  shape: number[];
  kind: TensorKind;
  /** set for routed-expert tensors, which live in experts/<layer>/<expert>.bin */
  expert?: { layer: number; expert: number };
}

type HfConfig = Record<string, unknown>;

interface Family {
  architecture(c: HfConfig): Architecture;
  tensors(a: Architecture): TensorSource[];
}

const families: Partial<Record<Architecture['modelType'], Family>> = {
  mixtral: {
    // HF MixtralConfig defaults where a key may be absent; structural sizes are required.
    architecture: (c) => {
      const hidden = int(c, 'hidden_size');
      const heads = int(c, 'num_attention_heads');
      noRopeScaling(c);
      return {
        modelType: 'mixtral',
        vocabSize: int(c, 'vocab_size'),
        hiddenSize: hidden,
        numLayers: int(c, 'num_hidden_layers'),
        numHeads: heads,
        numKvHeads: int(c, 'num_key_value_heads', heads),
        headDim: int(c, 'head_dim', null) ?? exactDiv(hidden, heads, 'hidden_size / num_attention_heads'),
        expertFfnSize: int(c, 'intermediate_size'),
        numExperts: int(c, 'num_local_experts'),
        topK: int(c, 'num_experts_per_tok', 2),
        normTopKProb: true, // Mixtral always renormalises the top-k softmax weights
        rmsNormEps: num(c, 'rms_norm_eps', 1e-5),
        ropeTheta: ropeTheta(c, 1e6),
        ropeLayout: 'neox', // HF applies rotate_half to HF-layout q/k weights
        contextLength: contextLength(c),
        tieWordEmbeddings: bool(c, 'tie_word_embeddings', false),
        ...neutralFlags,
      };
    },
    tensors: (a) => {
      const out: TensorSource[] = [];
      const h = a.hiddenSize;
      const qDim = a.numHeads * a.headDim;
      const kvDim = a.numKvHeads * a.headDim;
      out.push({ name: T.tokenEmbedding, hf: 'model.embed_tokens.weight', shape: [a.vocabSize, h], kind: 'matrix' });
      for (let l = 0; l < a.numLayers; l++) {
        const p = `model.layers.${l}`;
        out.push(
          { name: T.attnNorm(l), hf: `${p}.input_layernorm.weight`, shape: [h], kind: 'norm' },
          { name: T.attnQ(l), hf: `${p}.self_attn.q_proj.weight`, shape: [qDim, h], kind: 'matrix' },
          { name: T.attnK(l), hf: `${p}.self_attn.k_proj.weight`, shape: [kvDim, h], kind: 'matrix' },
          { name: T.attnV(l), hf: `${p}.self_attn.v_proj.weight`, shape: [kvDim, h], kind: 'matrix' },
          { name: T.attnOutput(l), hf: `${p}.self_attn.o_proj.weight`, shape: [h, qDim], kind: 'matrix' },
          { name: T.ffnNorm(l), hf: `${p}.post_attention_layernorm.weight`, shape: [h], kind: 'norm' },
          { name: T.router(l), hf: `${p}.block_sparse_moe.gate.weight`, shape: [a.numExperts, h], kind: 'router' },
        );
        for (let e = 0; e < a.numExperts; e++) {
          const q = `${p}.block_sparse_moe.experts.${e}`;
          const expert = { layer: l, expert: e };
          const f = a.expertFfnSize;
          out.push(
            { name: T.expertGate(l, e), hf: `${q}.w1.weight`, shape: [f, h], kind: 'matrix', expert },
            { name: T.expertUp(l, e), hf: `${q}.w3.weight`, shape: [f, h], kind: 'matrix', expert },
            { name: T.expertDown(l, e), hf: `${q}.w2.weight`, shape: [h, f], kind: 'matrix', expert },
          );
        }
      }
      out.push({ name: T.outputNorm, hf: 'model.norm.weight', shape: [h], kind: 'norm' });
      if (!a.tieWordEmbeddings) out.push({ name: T.output, hf: 'lm_head.weight', shape: [a.vocabSize, h], kind: 'matrix' });
      return out;
    },
  },
};

const neutralFlags = {
  qkvBias: false,
  qkNorm: 'none',
  sharedExpertFfnSize: 0,
  sharedExpertGate: false,
  embeddingMultiplier: 1,
  residualMultiplier: 1,
  logitsScaling: 1,
  routerTopKBeforeSoftmax: false,
} as const;

function family(config: HfConfig): Family {
  const type = config.model_type;
  const f = typeof type === 'string' ? families[type as Architecture['modelType']] : undefined;
  if (!f) throw new HfConfigError(`model_type ${JSON.stringify(type)} is not supported (supported: ${Object.keys(families).join(', ')})`);
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

// ---- typed access to config keys ----

function int(c: HfConfig, key: string): number;
function int(c: HfConfig, key: string, fallback: number): number;
function int(c: HfConfig, key: string, fallback: null): number | null;
function int(c: HfConfig, key: string, fallback?: number | null): number | null {
  const v = c[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new HfConfigError(`${key} is missing`);
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new HfConfigError(`${key} = ${JSON.stringify(v)} is not an integer`);
  return v;
}

function num(c: HfConfig, key: string, fallback: number): number {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new HfConfigError(`${key} = ${JSON.stringify(v)} is not a number`);
  return v;
}

function bool(c: HfConfig, key: string, fallback: boolean): boolean {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new HfConfigError(`${key} = ${JSON.stringify(v)} is not a boolean`);
  return v;
}

function exactDiv(a: number, b: number, what: string): number {
  if (a % b !== 0) throw new HfConfigError(`${what} = ${a}/${b} is not an integer`);
  return a / b;
}

// attention past a sliding window would differ from the reference: the window caps the context
function contextLength(c: HfConfig): number {
  const max = int(c, 'max_position_embeddings');
  const window = int(c, 'sliding_window', null);
  return window !== null && window > 0 ? Math.min(max, window) : max;
}

// transformers 5 may move rope_theta into rope_parameters
function ropeTheta(c: HfConfig, fallback: number): number {
  const params = c.rope_parameters as HfConfig | undefined | null;
  if (c.rope_theta === undefined && params && typeof params === 'object') return num(params, 'rope_theta', fallback);
  return num(c, 'rope_theta', fallback);
}

// a scaled RoPE would silently give wrong logits: refuse until the engine implements one
function noRopeScaling(c: HfConfig): void {
  const scaling = c.rope_scaling ?? (c.rope_parameters as HfConfig | undefined)?.rope_type;
  if (scaling !== undefined && scaling !== null && scaling !== 'default') {
    throw new HfConfigError(`rope scaling ${JSON.stringify(scaling)} is not supported`);
  }
}

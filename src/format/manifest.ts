// The model manifest (format "moe-edge/1"): architecture config, tensor index, SHA-256 of every object,
// tokenizer files and generation defaults. Parsed once into frozen, validated types.
import { z } from 'zod';
import { DTYPES } from './quant';

export const MANIFEST_FORMAT = 'moe-edge/1';

/** Architecture config, normalised from HF config.json. Architectures differ only by these flags. */
export const ArchitectureSchema = z.object({
  modelType: z.enum(['mixtral', 'qwen2_moe', 'qwen3_moe', 'olmoe', 'granitemoe']),
  vocabSize: z.number().int().positive(),
  hiddenSize: z.number().int().positive(),
  numLayers: z.number().int().positive(),
  numHeads: z.number().int().positive(),
  numKvHeads: z.number().int().positive(),
  headDim: z.number().int().positive(),
  expertFfnSize: z.number().int().positive(),
  numExperts: z.number().int().positive(),
  topK: z.number().int().positive(),
  normTopKProb: z.boolean(), // renormalise the top-k routing weights to sum to 1
  rmsNormEps: z.number().positive(),
  ropeTheta: z.number().positive(),
  ropeLayout: z.enum(['neox', 'interleaved']),
  contextLength: z.number().int().positive(),
  tieWordEmbeddings: z.boolean(),
  // flags for the architectures that follow mixtral (all off / neutral for mixtral)
  qkvBias: z.boolean().default(false),
  qkNorm: z.enum(['none', 'full', 'per_head']).default('none'),
  sharedExpertFfnSize: z.number().int().nonnegative().default(0),
  sharedExpertGate: z.boolean().default(false),
  embeddingMultiplier: z.number().default(1),
  attentionMultiplier: z.number().optional(), // replaces 1/sqrt(headDim) when set
  residualMultiplier: z.number().default(1),
  logitsScaling: z.number().default(1), // logits are divided by this
  routerTopKBeforeSoftmax: z.boolean().default(false),
});
export type Architecture = z.infer<typeof ArchitectureSchema>;

const DTypeSchema = z.enum(DTYPES as unknown as ['f32', 'f16', 'q8_0', 'q4_0']);
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'lowercase hex SHA-256');

export const TensorEntrySchema = z.object({
  object: z.string().min(1),
  offset: z.number().int().nonnegative(),
  bytes: z.number().int().positive(),
  dtype: DTypeSchema,
  shape: z.array(z.number().int().positive()).min(1).max(2), // [n] or [rows, cols]
});
export type TensorEntry = z.infer<typeof TensorEntrySchema>;

export const ObjectEntrySchema = z.object({ bytes: z.number().int().nonnegative(), sha256: Sha256 });

export const GenerationDefaultsSchema = z.object({
  bosTokenId: z.number().int().nonnegative().nullable(),
  eosTokenIds: z.array(z.number().int().nonnegative()),
  addBos: z.boolean(),
  temperature: z.number().nonnegative().default(0.7),
  topP: z.number().gt(0).lte(1).default(1),
  maxTokens: z.number().int().positive().default(256),
  /** How the model writes tool calls (src/grammar/tool-formats.ts); absent: recognised from the chat template. */
  toolCallFormat: z.enum(['hermes', 'granite', 'json']).optional(),
});

export const ManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  name: z.string().min(1),
  architecture: ArchitectureSchema,
  quant: z.object({ trunk: DTypeSchema, experts: DTypeSchema }),
  /** every object of the model (relative names) with its size and digest */
  objects: z.record(z.string(), ObjectEntrySchema),
  /** canonical tensor name -> where it lives; see tensorNames below */
  tensors: z.record(z.string(), TensorEntrySchema),
  tokenizer: z.object({ json: z.string(), config: z.string() }).nullable(),
  chatTemplate: z.string().nullable(),
  generation: GenerationDefaultsSchema,
});
export type Manifest = z.infer<typeof ManifestSchema>;

export function parseManifest(json: unknown): Manifest {
  const r = ManifestSchema.safeParse(json);
  if (!r.success) throw new ManifestError(r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  return Object.freeze(r.data);
}

export class ManifestError extends Error {
  constructor(detail: string) {
    super(`invalid model manifest: ${detail}`);
    this.name = 'ManifestError';
  }
}

/** Canonical tensor names (one place, used by the converter, the loader and the GGUF exporter). */
export const tensorNames = {
  tokenEmbedding: 'token_embd',
  outputNorm: 'output_norm',
  output: 'output', // absent when tieWordEmbeddings
  attnNorm: (l: number) => `blk.${l}.attn_norm`,
  attnQ: (l: number) => `blk.${l}.attn_q`,
  attnK: (l: number) => `blk.${l}.attn_k`,
  attnV: (l: number) => `blk.${l}.attn_v`,
  attnQBias: (l: number) => `blk.${l}.attn_q.bias`,
  attnKBias: (l: number) => `blk.${l}.attn_k.bias`,
  attnVBias: (l: number) => `blk.${l}.attn_v.bias`,
  attnQNorm: (l: number) => `blk.${l}.attn_q_norm`,
  attnKNorm: (l: number) => `blk.${l}.attn_k_norm`,
  attnOutput: (l: number) => `blk.${l}.attn_output`,
  ffnNorm: (l: number) => `blk.${l}.ffn_norm`,
  router: (l: number) => `blk.${l}.ffn_gate_inp`,
  sharedGate: (l: number) => `blk.${l}.ffn_gate_shexp`,
  sharedUp: (l: number) => `blk.${l}.ffn_up_shexp`,
  sharedDown: (l: number) => `blk.${l}.ffn_down_shexp`,
  sharedExpertGate: (l: number) => `blk.${l}.ffn_gate_inp_shexp`,
  expertGate: (l: number, e: number) => `blk.${l}.expert.${e}.ffn_gate`,
  expertUp: (l: number, e: number) => `blk.${l}.expert.${e}.ffn_up`,
  expertDown: (l: number, e: number) => `blk.${l}.expert.${e}.ffn_down`,
} as const;

/** The three tensors of one routed expert, all inside its object (`experts/<layer>/<expert>.bin`). */
export interface ExpertEntries {
  readonly gate: TensorEntry; // (I, H)
  readonly up: TensorEntry; // (I, H)
  readonly down: TensorEntry; // (H, I)
}

/** The entry of tensor `name`; ManifestError when the manifest has none. */
export function tensorEntry(manifest: Manifest, name: string): TensorEntry {
  const e = manifest.tensors[name];
  if (!e) throw new ManifestError(`no tensor ${name}`);
  return e;
}

/**
 * One expert's gate/up/down entries, checked to live in the expert's own object with the architecture's shapes:
 * the Worker and the backend read only that object for an expert, so an entry pointing elsewhere fails here by name.
 */
export function expertEntries(manifest: Manifest, layer: number, expert: number): ExpertEntries {
  const { hiddenSize: H, expertFfnSize: I } = manifest.architecture;
  const object = objectNames.expert(layer, expert);
  const get = (name: string, shape: [number, number]): TensorEntry => {
    const t = tensorEntry(manifest, name);
    if (t.object !== object) throw new ManifestError(`tensor ${name} lives in ${t.object}, expected ${object}`);
    if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
      throw new ManifestError(`tensor ${name} has shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
    }
    return t;
  };
  const t = tensorNames;
  return { gate: get(t.expertGate(layer, expert), [I, H]), up: get(t.expertUp(layer, expert), [I, H]), down: get(t.expertDown(layer, expert), [H, I]) };
}

/** Object names inside a model prefix. */
export const objectNames = {
  manifest: 'manifest.json',
  trunk: 'trunk.bin',
  expert: (l: number, e: number) => `experts/${l}/${e}.bin`,
  hotSet: 'hot-set.json',
} as const;

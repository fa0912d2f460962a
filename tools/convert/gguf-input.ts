// A GGUF file as converter input: its metadata becomes the config.json our HF families read (so defaults and
// refusals are the same as for HF checkpoints), and each canonical tensor is cut from llama.cpp's tensors:
// stacked experts sliced per expert, q/k rows of the llama/granite archs put back in HF order, all in ggml
// blocks, so f32/f16/q8_0/q4_0 pass through unchanged. The file is read tensor by tensor, never whole.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { architectureFromHf, hfTensorSources, HfConfigError, type TensorSource } from './hf-config';
import { GGML_TYPES, GgufError, GgufHeaderTruncated, metaValue, readGgufHeader, ropePermuteRows, type GgmlType, type GgufHeader, type GgufTensorInfo } from './gguf';
import {
  ggufSingleExpert, ggufStackedExperts, ggufTensorName, MODEL_TYPE_OF_GGUF_ARCH as MODEL_TYPE, NORM_TOPK_DEFAULT, PERMUTED_QK_ARCHS as PERMUTED_QK,
} from './gguf-arch';
import { tensorNames, type Architecture } from '../../src/format/manifest';
import { readRange } from './read-range';

/** A tensor cut out of the file: ggml layout, `rows` x `cols` (cols contiguous). */
export interface GgmlTensor {
  type: GgmlType;
  rows: number;
  cols: number;
  data: Uint8Array;
}

export interface GgufInput {
  name: string;
  arch: string;
  architecture: Architecture;
  header: GgufHeader;
  sources: TensorSource[];
  /** the ggml type one canonical tensor is stored in */
  typeOf(src: TensorSource): GgmlType;
  /** the bytes of one canonical tensor, in ggml layout and HF row order */
  tensor(src: TensorSource): Promise<GgmlTensor>;
  close(): Promise<void>;
}

/** A file is read as GGUF (a bad one is refused with GgufError), a folder as an HF checkpoint. */
export async function isGgufInput(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false; // missing: the HF path names what is missing
  }
}

export async function openGgufInput(path: string): Promise<GgufInput> {
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    const header = await readHeader(file, size);
    const arch = String(metaValue(header, 'general.architecture') ?? '');
    const config = hfConfigFromGguf(header, arch);
    const architecture = architectureFromHf(config);
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    const sources = hfTensorSources(architecture);
    const name = String(metaValue(header, 'general.name') ?? basename(path).replace(/\.gguf$/i, ''));
    const locate = (src: TensorSource) => locateTensor(src, architecture, byName);
    const problems = sources.map((s) => { try { locate(s); return null; } catch (e) { return (e as Error).message; } }).filter((x): x is string => x !== null);
    if (problems.length) throw new GgufError(`the file does not hold the tensors its metadata implies: ${[...new Set(problems)].slice(0, 8).join('; ')}`);
    return {
      name,
      arch,
      architecture,
      header,
      sources,
      typeOf: (src) => locate(src).info.dtype,
      async tensor(src) {
        const { info, rows, cols, slab } = locate(src);
        const rowBytes = (cols / GGML_TYPES[info.dtype].elems) * GGML_TYPES[info.dtype].bytes;
        const bytes = rows * rowBytes;
        let data = await readAt(file, info.start + slab * bytes, bytes);
        const heads = src.name === tensorNames.attnQ(layerOf(src)) ? architecture.numHeads : src.name === tensorNames.attnK(layerOf(src)) ? architecture.numKvHeads : 0;
        if (heads && PERMUTED_QK.has(arch)) data = ropePermuteRows(data, rows, heads, 'from-gguf');
        return { type: info.dtype, rows, cols, data };
      },
      close: () => file.close(),
    };
  } catch (e) {
    await file.close();
    throw e;
  }
}

const layerOf = (src: TensorSource): number => Number(/^blk\.(\d+)\./.exec(src.name)?.[1] ?? -1);

/** The GGUF tensor holding `src`, and which slab (expert) of it. */
function locateTensor(src: TensorSource, a: Architecture, byName: Map<string, GgufTensorInfo>): { info: GgufTensorInfo; rows: number; cols: number; slab: number } {
  const [rows, cols] = src.shape.length === 2 ? src.shape : [1, src.shape[0]];
  const check = (info: GgufTensorInfo, dims: number[]) => {
    if (info.dims.join() !== dims.join()) throw new GgufError(`${info.name} has ne [${info.dims}], expected [${dims}]`);
    if (cols % GGML_TYPES[info.dtype].elems !== 0) throw new GgufError(`${info.name}: rows of ${cols} are not whole ${info.dtype} blocks`);
    return info;
  };
  if (src.expert) {
    const { layer, expert } = src.expert;
    const which = src.name === tensorNames.expertGate(layer, expert) ? 'gate' : src.name === tensorNames.expertUp(layer, expert) ? 'up' : 'down';
    const stacked = byName.get(ggufStackedExperts(layer, which));
    if (stacked) return { info: check(stacked, [cols, rows, a.numExperts]), rows, cols, slab: expert };
    const single = byName.get(ggufSingleExpert(layer, which, expert));
    if (single) return { info: check(single, [cols, rows]), rows, cols, slab: 0 };
    throw new GgufError(`${ggufStackedExperts(layer, which)} is missing`);
  }
  const gg = ggufTensorName(src.name);
  const info = byName.get(gg);
  if (!info) throw new GgufError(`${gg} is missing`);
  // (1, H) for us, 1-D or [H, 1] in GGUF: qwen2moe's shared-expert gate
  const dims = src.shape.length === 2 && !(rows === 1 && info.dims.length === 1) ? [cols, rows] : [cols];
  return { info: check(info, dims), rows, cols, slab: 0 };
}

/** The config.json an HF checkpoint of this model would carry, from llama.cpp's metadata keys. */
export function hfConfigFromGguf(h: Pick<GgufHeader, 'metadata' | 'tensors'>, arch: string): Record<string, unknown> {
  const modelType = MODEL_TYPE[arch];
  if (!modelType) throw new HfConfigError(`GGUF architecture ${JSON.stringify(arch)} is not supported (supported: ${Object.keys(MODEL_TYPE).join(', ')})`);
  const key = (k: string) => metaValue(h, `${arch}.${k}`);
  const scalar = (k: string): number | undefined => {
    const v = key(k);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw new HfConfigError(`${arch}.${k} = ${JSON.stringify(String(v))} is not a number (per-layer values are not supported)`);
    return h.metadata.get(`${arch}.${k}`)?.type === 'f32' ? shortestF32(v) : v;
  };
  const required = (k: string): number => {
    const v = scalar(k);
    if (v === undefined) throw new HfConfigError(`${arch}.${k} is missing`);
    return v;
  };
  const experts = scalar('expert_count') ?? 0;
  if (experts === 0) throw new HfConfigError(`${arch} without ${arch}.expert_count is a dense model, not an MoE`);
  const tensor = (n: string) => h.tensors.find((t) => t.name === n);
  const tokens = metaValue(h, 'tokenizer.ggml.tokens');
  const hidden = required('embedding_length');
  const heads = required('attention.head_count');
  const headDim = scalar('attention.key_length') ?? hidden / heads;
  const ropeDims = scalar('rope.dimension_count');
  if (ropeDims !== undefined && ropeDims !== headDim) throw new HfConfigError(`${arch}.rope.dimension_count ${ropeDims} != head dim ${headDim} (partial RoPE is not supported)`);
  const scaling = metaValue(h, `${arch}.rope.scaling.type`);
  const expertFfn = scalar('expert_feed_forward_length') ?? required('feed_forward_length');
  const normTopK = metaValue(h, `${arch}.expert_weights_norm`);
  const config: Record<string, unknown> = {
    model_type: modelType,
    vocab_size: scalar('vocab_size') ?? (Array.isArray(tokens) ? tokens.length : tensor('token_embd.weight')?.dims[1]),
    hidden_size: hidden,
    num_hidden_layers: required('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: scalar('attention.head_count_kv') ?? heads,
    head_dim: headDim,
    rms_norm_eps: required('attention.layer_norm_rms_epsilon'),
    rope_theta: scalar('rope.freq_base') ?? 10000,
    rope_scaling: scaling === undefined || scaling === 'none' ? null : scaling,
    max_position_embeddings: required('context_length'),
    tie_word_embeddings: !tensor('output.weight'),
    num_experts_per_tok: required('expert_used_count'),
    norm_topk_prob: typeof normTopK === 'boolean' ? normTopK : NORM_TOPK_DEFAULT[arch],
  };
  switch (modelType) {
    case 'mixtral':
      Object.assign(config, { intermediate_size: expertFfn, num_local_experts: experts });
      if (config.norm_topk_prob === false) throw new HfConfigError('llama with expert_weights_norm = false is not Mixtral (its routing renormalises)');
      break;
    case 'granitemoe':
      Object.assign(config, {
        intermediate_size: expertFfn,
        num_local_experts: experts,
        embedding_multiplier: scalar('embedding_scale') ?? 1,
        attention_multiplier: scalar('attention.scale') ?? 1,
        residual_multiplier: scalar('residual_scale') ?? 1,
        logits_scaling: scalar('logit_scale') ?? 1,
      });
      break;
    case 'olmoe':
      Object.assign(config, { intermediate_size: expertFfn, num_experts: experts });
      break;
    case 'qwen2_moe':
      Object.assign(config, {
        moe_intermediate_size: expertFfn,
        num_experts: experts,
        shared_expert_intermediate_size: scalar('expert_shared_feed_forward_length') ?? 0,
        qkv_bias: !!tensor('blk.0.attn_q.bias'),
      });
      break;
    case 'qwen3_moe':
      Object.assign(config, { moe_intermediate_size: expertFfn, num_experts: experts });
      break;
  }
  return config;
}

/** The shortest decimal that is the same f32 (1e-5, not 9.999999747378752e-6, as config.json wrote it). */
export function shortestF32(x: number): number {
  for (let digits = 1; digits <= 17; digits++) {
    const d = Number(x.toPrecision(digits));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

/** The header, read in growing chunks: a large vocabulary makes it tens of megabytes. */
async function readHeader(file: FileHandle, size: number): Promise<GgufHeader> {
  for (let chunk = 1 << 20; ; chunk *= 4) {
    const head = await readAt(file, 0, Math.min(chunk, size));
    try {
      return readGgufHeader(head, size);
    } catch (e) {
      if (!(e instanceof GgufHeaderTruncated) || head.length === size) throw e;
    }
  }
}

const readAt = (file: FileHandle, offset: number, length: number) => readRange(file, offset, length, (msg) => new GgufError(msg));

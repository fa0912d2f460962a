// How llama.cpp names and runs each architecture we support: its GGUF arch name, whether its converter
// reorders q/k rows for adjacent-pair RoPE, and what its graph does with the top-k routing weights when the
// file has no expert_weights_norm key. One table for GGUF import (tools/convert/gguf-input.ts) and export.
import type { Architecture } from '../../src/format/manifest';

type ModelType = Architecture['modelType'];

export const GGUF_ARCH: Record<ModelType, string> = {
  mixtral: 'llama',
  qwen2_moe: 'qwen2moe',
  qwen3_moe: 'qwen3moe',
  olmoe: 'olmoe',
  granitemoe: 'granitemoe',
};

/** GGUF arch -> HF model_type (llama with experts is Mixtral). */
export const MODEL_TYPE_OF_GGUF_ARCH: Record<string, ModelType> = Object.fromEntries(Object.entries(GGUF_ARCH).map(([m, g]) => [g, m as ModelType]));

/** llama.cpp's tensor name for a canonical (manifest) tensor name: ours are its names without `.weight`. */
export const ggufTensorName = (canonical: string): string => (canonical.endsWith('.bias') ? canonical : `${canonical}.weight`);

export type ExpertProjection = 'gate' | 'up' | 'down';
/** One layer's routed experts of a projection, stacked into one tensor ne [cols, rows, experts]. */
export const ggufStackedExperts = (layer: number, proj: ExpertProjection): string => `blk.${layer}.ffn_${proj}_exps.weight`;
/** GGUFs written before llama.cpp stacked experts (early 2024): one tensor per expert. */
export const ggufSingleExpert = (layer: number, proj: ExpertProjection, expert: number): string => `blk.${layer}.ffn_${proj}.${expert}.weight`;

/** Archs whose attn_q/attn_k rows llama.cpp's converter permutes for its adjacent-pair (NORM) RoPE. */
export const PERMUTED_QK_ARCHS = new Set(['llama', 'granitemoe']);

/** norm_topk_prob as llama.cpp's graph applies it when the file has no {arch}.expert_weights_norm. */
export const NORM_TOPK_DEFAULT: Record<string, boolean> = { llama: true, granitemoe: true, qwen3moe: true, qwen2moe: false, olmoe: false };

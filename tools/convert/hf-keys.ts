// Typed, checked access to Hugging Face config.json keys: a wrong type or a setting the engine cannot
// honour fails conversion with the key's name instead of producing a model that silently differs.

export type HfConfig = Record<string, unknown>;

export class HfConfigError extends Error {
  constructor(detail: string) {
    super(`unsupported or invalid config.json: ${detail}`);
    this.name = 'HfConfigError';
  }
}

export function int(c: HfConfig, key: string): number;
export function int(c: HfConfig, key: string, fallback: number): number;
export function int(c: HfConfig, key: string, fallback: null): number | null;
export function int(c: HfConfig, key: string, fallback?: number | null): number | null {
  const v = c[key];
  if (v === undefined || v === null) {
    if (fallback === undefined) throw new HfConfigError(`${key} is missing`);
    return fallback;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new HfConfigError(`${key} = ${JSON.stringify(v)} is not an integer`);
  return v;
}

export function num(c: HfConfig, key: string, fallback: number): number {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new HfConfigError(`${key} = ${JSON.stringify(v)} is not a number`);
  return v;
}

export function bool(c: HfConfig, key: string, fallback: boolean): boolean {
  const v = c[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new HfConfigError(`${key} = ${JSON.stringify(v)} is not a boolean`);
  return v;
}

export function exactDiv(a: number, b: number, what: string): number {
  if (a % b !== 0) throw new HfConfigError(`${what} = ${a}/${b} is not an integer`);
  return a / b;
}

/** head_dim when the config names one (Qwen3: 128 with hidden 2048 / 32 heads), else hidden / heads. */
export function headDim(c: HfConfig): number {
  return int(c, 'head_dim', null) ?? exactDiv(int(c, 'hidden_size'), int(c, 'num_attention_heads'), 'hidden_size / num_attention_heads');
}

// attention past a sliding window would differ from the reference: the window caps the context.
// Qwen configs carry a sliding_window that only applies when use_sliding_window is true.
export function contextLength(c: HfConfig): number {
  const max = int(c, 'max_position_embeddings');
  const window = bool(c, 'use_sliding_window', true) ? int(c, 'sliding_window', null) : null;
  return window !== null && window > 0 ? Math.min(max, window) : max;
}

// transformers 5 may move rope_theta into rope_parameters
export function ropeTheta(c: HfConfig, fallback: number): number {
  const params = c.rope_parameters as HfConfig | undefined | null;
  if (c.rope_theta === undefined && params && typeof params === 'object') return num(params, 'rope_theta', fallback);
  return num(c, 'rope_theta', fallback);
}

// a scaled RoPE would silently give wrong logits: refuse until the engine implements one
export function noRopeScaling(c: HfConfig): void {
  const scaling = c.rope_scaling ?? (c.rope_parameters as HfConfig | undefined)?.rope_type;
  if (scaling !== undefined && scaling !== null && scaling !== 'default') {
    throw new HfConfigError(`rope scaling ${JSON.stringify(scaling)} is not supported`);
  }
}

/** The experts' activation must be SiLU (the fused SwiGLU kernel); HF writes it as hidden_act. */
export function siluOnly(c: HfConfig): void {
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'swish') throw new HfConfigError(`hidden_act ${JSON.stringify(act)} is not supported (only silu)`);
}

/** Refuse a key set to anything but its neutral value (a feature the forward pass does not have). */
export function requireNeutral(c: HfConfig, key: string, neutral: unknown[], what: string): void {
  const v = c[key];
  if (v !== undefined && !neutral.some((n) => JSON.stringify(n) === JSON.stringify(v))) {
    throw new HfConfigError(`${key} = ${JSON.stringify(v)} (${what}) is not supported`);
  }
}

/**
 * Qwen-style configs may make some layers dense (mlp_only_layers, decoder_sparse_step > 1); the engine
 * runs every layer as MoE, so such a model is refused rather than converted wrongly.
 */
export function everyLayerSparse(c: HfConfig): void {
  const step = int(c, 'decoder_sparse_step', 1);
  const dense = c.mlp_only_layers;
  if (step !== 1) throw new HfConfigError(`decoder_sparse_step = ${step} (dense layers between MoE layers) is not supported`);
  if (dense !== undefined && dense !== null && !(Array.isArray(dense) && dense.length === 0)) {
    throw new HfConfigError(`mlp_only_layers = ${JSON.stringify(dense)} (dense layers) is not supported`);
  }
}

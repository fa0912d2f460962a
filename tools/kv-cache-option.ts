// The CLI's --kv-cache-type: the KV cache's element type. `generate` defaults to the Worker's default
// (KV_CACHE_TYPE unset), so the CLI prints what the Worker answers; `logits` and `perplexity` default to f32,
// the exact reference the llama.cpp fixtures are checked against.
import { KV_CACHE_TYPES, type KvCacheType } from '../src/engine/kv-cache';

export function kvCacheTypeOf(v: string | undefined, fallback: KvCacheType = 'f32'): KvCacheType {
  const t = (v ?? fallback) as KvCacheType;
  if (!KV_CACHE_TYPES.includes(t)) throw new Error(`unknown --kv-cache-type ${v}; one of ${KV_CACHE_TYPES.join(', ')}`);
  return t;
}

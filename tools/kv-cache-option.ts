// The CLI's --kv-cache-type: the KV cache's element type for logits, generate and perplexity (default f32, the
// exact reference the llama.cpp fixtures are checked against; the Worker's is wrangler.toml's KV_CACHE_TYPE).
import { KV_CACHE_TYPES, type KvCacheType } from '../src/engine/kv-cache';

export function kvCacheTypeOf(v: string | undefined): KvCacheType {
  const t = (v ?? 'f32') as KvCacheType;
  if (!KV_CACHE_TYPES.includes(t)) throw new Error(`unknown --kv-cache-type ${v}; one of ${KV_CACHE_TYPES.join(', ')}`);
  return t;
}

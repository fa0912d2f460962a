// The KV cache's element type (KV_CACHE_TYPE: f32 | f16 | q8_0 | q4_0, as llama.cpp's -ctk/-ctv) and its size:
// the one function the Sequence allocates by, admission reserves by and the planner reports, so they agree.
import type { Architecture } from '../format/manifest';
import { DTYPES, QK, isQuantized, memoryBytes, type DType } from '../format/quant';

export type KvCacheType = DType;
export const KV_CACHE_TYPES: readonly KvCacheType[] = DTYPES;
/** wrangler.toml's KV_CACHE_TYPE when unset, chosen from bench/results/kv-cache.md (docs/placement.md). */
export const DEFAULT_KV_CACHE_TYPE: KvCacheType = 'q8_0';

/** q8_0/q4_0 blocks of 32 run along each head of a cache row, so a head must be whole blocks (as ggml requires). */
export function checkKvCacheType(a: Pick<Architecture, 'modelType' | 'headDim'>, type: KvCacheType): void {
  if (!KV_CACHE_TYPES.includes(type)) throw new RangeError(`unknown KV cache type ${JSON.stringify(type)}: one of ${KV_CACHE_TYPES.join(', ')}`);
  if (isQuantized(type) && a.headDim % QK !== 0) {
    throw new RangeError(`a ${type} KV cache needs a head dimension that is a multiple of ${QK}; this ${a.modelType} model has ${a.headDim}: use f16 or f32`);
  }
}

/** Heap bytes of one layer's K (or V) cache of `positions` rows: quants and f32 scales in one block (quant.ts's layout). */
export function kvTensorBytes(a: Pick<Architecture, 'modelType' | 'headDim' | 'numKvHeads'>, positions: number, type: KvCacheType): number {
  checkKvCacheType(a, type);
  return memoryBytes(type, positions * a.numKvHeads * a.headDim);
}

/** K and V of every layer: what one generation of `positions` tokens holds as its cache. */
export function kvCacheBytes(a: Pick<Architecture, 'modelType' | 'headDim' | 'numKvHeads' | 'numLayers'>, positions: number, type: KvCacheType): number {
  return 2 * a.numLayers * kvTensorBytes(a, positions, type);
}

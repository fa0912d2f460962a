// The speed-of-light bound of decode: the bytes one decode step must read, from the manifest alone (trunk, the
// top-k experts of every layer, the KV cache, the head), so tok/s can be reported as a fraction of memory speed.
import { expertEntries, objectNames, tensorNames, type Manifest } from '../../src/format/manifest';
import { kvCacheBytes } from '../../src/engine/kv-cache';
import { memoryBytes, type DType } from '../../src/format/quant';
import { ggmlBytes } from '../../tools/convert/gguf';

/**
 * Whose bytes: 'heap' = moe-edge's kernel memory (quants + f32 scales, src/format/quant.ts memoryBytes);
 * 'gguf' = ggml's blocks as the exported GGUF stores them and llama.cpp reads them (f16 scales).
 */
export type ByteLayout = 'heap' | 'gguf';

export interface StepBytes {
  trunk: number; // every trunk tensor but the embedding and head (attention, norms, routers, shared experts) + one embedding row
  experts: number; // top-k routed experts per layer, gate + up + down
  kv: number; // K and V of every layer over the positions attended
  head: number; // the output matrix (the embedding itself when tied)
  total: number;
}

const sizeOf = (layout: ByteLayout) => (dtype: DType, n: number) => (layout === 'heap' ? memoryBytes(dtype, n) : ggmlBytes(dtype, n));
const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Bytes one decode step reads at the least when it attends `positions` cache rows (the new token's included) with a
 * `kvType` cache. Each weight is read once; activations and scratch are left out (they stay in cache).
 */
export function decodeStepBytes(m: Manifest, positions: number, kvType: DType, layout: ByteLayout): StepBytes {
  const a = m.architecture;
  const size = sizeOf(layout);
  const t = tensorNames;
  const embed = m.tensors[t.tokenEmbedding];
  const out = a.tieWordEmbeddings ? embed : m.tensors[t.output];
  if (!embed || !out) throw new Error(`${m.name}: the manifest lacks ${t.tokenEmbedding} or ${t.output}`);
  let trunk = size(embed.dtype, a.hiddenSize); // the new token's embedding row
  for (const [name, e] of Object.entries(m.tensors)) {
    if (e.object === objectNames.trunk && name !== t.tokenEmbedding && name !== t.output) trunk += size(e.dtype, numel(e.shape));
  }
  let experts = 0;
  for (let l = 0; l < a.numLayers; l++) {
    // every expert of a layer has the shapes expertEntries checks; expert 0 stands for the top-k picked
    const x = expertEntries(m, l, 0);
    experts += a.topK * [x.gate, x.up, x.down].reduce((s, e) => s + size(e.dtype, numel(e.shape)), 0);
  }
  // the cache as the Sequence allocates it (heap), or as ggml's blocks (llama.cpp's cache of that type)
  const kv = layout === 'heap' ? kvCacheBytes(a, positions, kvType) : 2 * a.numLayers * ggmlBytes(kvType, positions * a.numKvHeads * a.headDim);
  const head = size(out.dtype, numel(out.shape));
  return { trunk, experts, kv, head, total: trunk + experts + kv + head };
}

/** Mean bytes per step of `decode` steps after a `context`-token prompt: step i (1-based) attends context + i rows. */
export function decodeRunBytes(m: Manifest, context: number, decode: number, kvType: DType, layout: ByteLayout): StepBytes {
  const first = decodeStepBytes(m, context + 1, kvType, layout);
  const last = decodeStepBytes(m, context + decode, kvType, layout);
  // linear in positions: the mean of the first and last step is the mean of all
  const kv = (first.kv + last.kv) / 2;
  return { ...first, kv, total: first.trunk + first.experts + kv + first.head };
}

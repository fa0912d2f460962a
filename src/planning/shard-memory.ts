// What an expert-shard Worker's isolate holds besides its experts: its JS heap and one call's scratch. The
// tier planner subtracts both from a shard's memory budget to get the bytes of experts a shard may hold.
import type { Architecture } from '../format/manifest';
import { PREFILL_CHUNK } from '../engine/forward';

/**
 * JS heap of a shard isolate: the Worker bundle's compiled code, the request and socket buffers, no tokenizer
 * and no KV cache. Measured in workerd (bench/results/tiers.md, `npm run bench:tiers`): a shard holding 85-90
 * granite-shaped q4_0 experts kept 14.8-15.3 MiB of V8 heap allocated (8.9-9.2 MiB used) under prefill- and
 * decode-sized calls; the former 12 MiB estimate was short of the allocated heap. Not in it: ArrayBuffers of
 * spent frames and R2 reads, which rose to ~60 MiB before V8 collected them (same file).
 */
export const SHARD_JS_BYTES = 16 * 2 ** 20;

/**
 * Heap bytes of one expert call at its largest, a prefill chunk: the chunk's hidden states in, every
 * (token, slot) result out, the per-expert gather and result buffers, and the FFN's intermediates (the
 * widest of hidden and expert FFN, three of them: gate, up, the quantized activation). An upper bound
 * in the spirit of admission's generationBytes; calls run one at a time, so one is counted.
 */
export function shardScratchBytes(a: Pick<Architecture, 'hiddenSize' | 'expertFfnSize' | 'topK'>): number {
  const C = PREFILL_CHUNK;
  const H = a.hiddenSize;
  const widest = Math.max(H, a.expertFfnSize);
  return 4 * (C * H + C * a.topK * H + 2 * C * H + 3 * C * widest);
}

/** Bytes of experts a shard may hold within `budgetBytes` of isolate memory (negative: not even none fit). */
export function shardExpertRoom(a: Pick<Architecture, 'hiddenSize' | 'expertFfnSize' | 'topK'>, budgetBytes: number): number {
  return budgetBytes - SHARD_JS_BYTES - shardScratchBytes(a);
}

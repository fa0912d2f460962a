// What an expert-shard Worker's isolate holds besides its experts: its JS heap and one call's scratch. The
// tier planner subtracts both from a shard's memory budget to get the bytes of experts a shard may hold.
import type { Architecture } from '../format/manifest';
import { PREFILL_CHUNK } from '../engine/forward';

/**
 * JS heap of a shard isolate: the Worker bundle's compiled code, the request and socket buffers, no tokenizer
 * and no KV cache. An estimate (the front's JS heap without its tokenizer is ~7-12 MiB in
 * bench/results/memory.json, models/default); to be confirmed by measuring a shard in workerd.
 */
export const SHARD_JS_BYTES = 12 * 2 ** 20;

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

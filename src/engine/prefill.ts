// Prefill: a prompt through forward() in chunks of PREFILL_CHUNK tokens (forward's limit, which bounds a
// Sequence's scratch). The one chunk loop that generation, scoring, profiling and the benchmarks share.
import type { Kernels } from '../kernels/types';
import type { ExpertExecutor } from './experts';
import { forward, PREFILL_CHUNK, type ForwardOptions, type Sequence } from './forward';

export interface PrefillOptions extends ForwardOptions {
  /** Looked at before each chunk: once aborted, the prefill stops there with the signal's reason. */
  signal?: AbortSignal;
  /** Each chunk's logits rows (and its first token's index) handed here instead of kept: scoring a long prompt. */
  onRows?: (rows: Float32Array[], start: number) => void;
}

/**
 * Appends `tokens` to `seq` (none: nothing happens). Returns the logits rows `opts.logits` asks for:
 * 'last' -> the last token's row, 'all' -> one row per token.
 */
export async function prefill(k: Kernels, seq: Sequence, experts: ExpertExecutor, tokens: readonly number[], opts: PrefillOptions): Promise<Float32Array[]> {
  const rows: Float32Array[] = [];
  for (let i = 0; i < tokens.length; i += PREFILL_CHUNK) {
    throwIfAborted(opts.signal);
    const chunk = await forward(k, seq, experts, tokens.slice(i, i + PREFILL_CHUNK), opts);
    if (opts.onRows) opts.onRows(chunk, i);
    else {
      if (opts.logits === 'last') rows.length = 0;
      rows.push(...chunk);
    }
  }
  return rows;
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('generation cancelled', 'AbortError');
}

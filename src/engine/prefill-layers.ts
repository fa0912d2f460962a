// Layer-major prefill: every chunk of the prompt through layer 0, then through layer 1, ... so each layer's KV cache
// is final (and can travel) before the next layer starts; the backend's prefill call streams it that way. Chunks
// are prefill()'s (PREFILL_CHUNK tokens), so every kernel call sees the very rows it sees there: same bits.
import type { Kernels } from '../kernels/types';
import type { ExpertExecutor } from './experts';
import { embedTokens, finishRows, forwardLayer, headFor, PREFILL_CHUNK, type ForwardOptions, type Sequence } from './forward';
import { throwIfAborted } from './prefill';

export interface LayerPrefillOptions {
  /** After each layer, with its K/V rows of every prompt position in the cache (awaited: backpressure). */
  onLayer?: (layer: number) => Promise<void> | void;
  /** Looked at before each layer. */
  signal?: AbortSignal;
}

/**
 * Appends `tokens` to `seq` layer by layer. Returns the last position's residual row (before the final norm), which
 * forward()'s finish (finishRows) turns into logits where the decoding happens.
 */
export async function prefillByLayer(k: Kernels, seq: Sequence, experts: ExpertExecutor, tokens: readonly number[], opts: LayerPrefillOptions = {}): Promise<Float32Array> {
  const a = seq.weights.arch;
  const H = a.hiddenSize;
  const n = tokens.length;
  if (n < 1) throw new RangeError('prefillByLayer needs at least one token');
  if (seq.length + n > seq.capacity) throw new RangeError(`sequence capacity ${seq.capacity} exceeded`);
  const x = k.heap.alloc(n * H * 4); // the residual rows of the whole prompt
  try {
    const head = headFor(k, seq, experts);
    for (let c = 0; c < n; c += PREFILL_CHUNK) await embedTokens(k, a, head, tokens.slice(c, c + PREFILL_CHUNK), x + c * H * 4);
    for (let l = 0; l < a.numLayers; l++) {
      throwIfAborted(opts.signal);
      for (let c = 0; c < n; c += PREFILL_CHUNK) await forwardLayer(k, seq, experts, l, x + c * H * 4, Math.min(PREFILL_CHUNK, n - c), seq.length + c);
      await opts.onLayer?.(l);
    }
    seq.length += n;
    return k.heap.f32(x + (n - 1) * H * 4, H).slice();
  } finally {
    k.heap.release(x);
  }
}

/**
 * The step's end after a prefill that happened elsewhere (or by layer): the last position's residual row into
 * seq.x, then forward()'s finish: logits ('last') or the final-normed row left in seq.h ('hidden').
 */
export async function finishPrefill(k: Kernels, seq: Sequence, experts: ExpertExecutor, hidden: Float32Array, opts: Omit<ForwardOptions, 'logits'> & { logits: 'last' | 'hidden' }): Promise<Float32Array[]> {
  const H = seq.weights.arch.hiddenSize;
  if (hidden.length !== H) throw new RangeError(`finishPrefill: a hidden row of ${hidden.length}, the model's is ${H}`);
  k.heap.f32(seq.x, H).set(hidden);
  return finishRows(k, seq, headFor(k, seq, experts), seq.x, 1, opts);
}

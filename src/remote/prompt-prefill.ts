// Per generation: where its prompt is prefilled. At least REMOTE_PREFILL_MIN_TOKENS tokens and a backend: the
// backend's prefill call (compute-bound work on the GPU tier), its KV stream placed into this generation's cache;
// anything shorter, or a call that fails or stalls, here, exactly as without it. A fallback is flagged like the
// other degradations (usage.moe.degraded and prefill_fallback, x-moe-degraded, /metrics).
import type { BackendTarget, MoeUsage } from '../engine/api';
import type { ExpertExecutor } from '../engine/experts';
import type { PromptPrefill } from '../engine/generate';
import { prefill } from '../engine/prefill';
import { finishPrefill } from '../engine/prefill-layers';
import type { Kernels } from '../kernels/types';
import { BackendError } from './errors';
import { remotePrefill } from './remote-prefill';

export interface PromptPrefillOptions {
  kernels: Kernels;
  experts: ExpertExecutor;
  backend: BackendTarget;
  modelTag: Uint8Array;
  minTokens: number;
  usage: MoeUsage;
}

/** The generation's PromptPrefill: remote for long prompts, local otherwise and on any backend failure. */
export function promptPrefill(o: PromptPrefillOptions): PromptPrefill {
  const { kernels: k, experts, usage } = o;
  return async (seq, tokens, opts) => {
    if (o.minTokens > 0 && tokens.length >= o.minTokens && seq.length === 0 && (opts.logits === 'last' || opts.logits === 'hidden')) {
      // only the call falls back: a failure of the step's own end (e.g. a head shard) is the generation's, as locally
      const r = await remotePrefill(k.heap, seq, o.backend, o.modelTag, tokens).catch((e: unknown) => {
        if (!(e instanceof BackendError)) throw e;
        usage.prefill_fallback = e.reason;
        usage.degraded ??= e.reason;
        seq.length = 0; // whatever arrived is overwritten below
        return null;
      });
      if (r) {
        usage.prefill = 'remote';
        usage.prefill_kv_bytes = r.bytes;
        usage.prefill_ms = r.ms;
        experts.observe?.(r.counts, tokens.length); // the prompt's routing, for the statistics and the profile pick
        return finishPrefill(k, seq, experts, r.hidden, { ...opts, logits: opts.logits });
      }
    }
    return prefill(k, seq, experts, tokens, opts);
  };
}

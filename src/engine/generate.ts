// The generation loop: prefill the prompt in chunks, then decode token by token with sampling, stop
// strings, EOS and cancellation. Each generation owns its Sequence (KV cache, scratch) and frees it.
// The request has passed the context rule (context.ts) where it was built.
import type { Kernels } from '../kernels/types';
import type { GenerateChunk, GenerateRequest, GenerateResult } from './api';
import type { ExpertExecutor } from './experts';
import { forward, Sequence, type ForwardOptions } from './forward';
import type { KvCacheType } from './kv-cache';
import type { ModelWeights } from './model';
import { prefill, throwIfAborted, type PrefillOptions } from './prefill';
import { Sampler } from './sampler';
import { StopMatcher } from './stop';
import { SpeculativeDecoder, type SpeculationOptions } from './speculative-decode';
import { IncrementalDecoder, type TextCodec } from './tokenizer';

export interface GenerationContext {
  kernels: Kernels;
  weights: ModelWeights;
  experts: ExpertExecutor;
  /** null: a model without a tokenizer (fed token ids), whose output text is empty */
  codec: Pick<TextCodec, 'decode'> | null;
  eosTokenIds: readonly number[];
  /** the KV cache's element type (absent: f32) */
  kvCacheType?: KvCacheType;
  /** How the prompt gets into the cache (absent: prefill() here; the Worker may have the backend do it). */
  prefill?: PromptPrefill;
  /** Self-speculative decoding (absent: token by token); the loop turns it off where it cannot apply. */
  speculation?: SpeculationOptions;
}

/** Puts `tokens` into the empty `seq` and returns what prefill() would: the last row's logits, or none for 'hidden'. */
export type PromptPrefill = (seq: Sequence, tokens: readonly number[], opts: PrefillOptions) => Promise<Float32Array[]>;

export async function* generateTokens(ctx: GenerationContext, req: GenerateRequest): AsyncGenerator<GenerateChunk, GenerateResult, void> {
  const { kernels: k, weights } = ctx;
  const seq = new Sequence(k, weights, req.promptTokens.length + req.maxTokens, { kvType: ctx.kvCacheType });
  const sampler = new Sampler(req.sampling);
  const decoder = new IncrementalDecoder(ctx.codec ?? { decode: () => '' });
  const stop = new StopMatcher(req.stop);
  let completion = 0;
  let finishReason: GenerateResult['finishReason'] = 'length';
  try {
    // the next token: sampled here from logits computed here, or where the head is (one round trip a step)
    const remote = ctx.experts.head?.sample ? ctx.experts.head : null;
    const row = new Float32Array(weights.arch.vocabSize); // every step's logits, read by the sampler before the next
    let next: { token: number; embedding?: Float32Array };
    const step = async (run: (opts: ForwardOptions) => Promise<Float32Array[]>): Promise<typeof next> => {
      if (!remote) return { token: sampler.sample((await run({ logits: 'last', into: row }))[0]) };
      await run({ logits: 'hidden' });
      return remote.sample!(seq.h, req.sampling, sampler.draw());
    };
    const prefillPrompt: PromptPrefill = ctx.prefill ?? ((s, tokens, opts) => prefill(k, s, ctx.experts, tokens, opts));
    next = await step((opts) => prefillPrompt(seq, req.promptTokens, { ...opts, signal: req.signal }));
    // speculation drafts and verifies with logits here; a head that samples remotely decodes token by token
    const spec = ctx.speculation && !remote ? new SpeculativeDecoder(k, seq, ctx.experts, ctx.speculation, req.sampling, () => sampler.draw()) : null;
    while (completion < req.maxTokens) {
      throwIfAborted(req.signal);
      const token = next.token;
      completion++;
      if (ctx.eosTokenIds.includes(token)) {
        finishReason = 'stop';
        break;
      }
      const text = stop.push(decoder.push(token));
      if (text) yield { text };
      if (stop.stopped) {
        finishReason = 'stop';
        break;
      }
      const embedded = next.embedding;
      if (completion >= req.maxTokens) continue;
      if (spec) next = { token: await spec.next(token, req.signal) };
      else next = await step((opts) => forward(k, seq, ctx.experts, [token], { ...opts, embedded }));
    }
    const rest = stop.flush();
    if (rest) yield { text: rest };
    return { finishReason, promptTokens: req.promptTokens.length, completionTokens: completion };
  } finally {
    seq.release();
  }
}

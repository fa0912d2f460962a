// The generation loop: prefill the prompt in chunks, then decode token by token with sampling, stop
// strings, EOS and cancellation. Each generation owns its Sequence (KV cache, scratch) and frees it.
// The request has passed the context rule (context.ts) where it was built.
import type { Kernels } from '../kernels/types';
import type { GenerateChunk, GenerateRequest, GenerateResult } from './api';
import type { ExpertExecutor } from './experts';
import { forward, Sequence } from './forward';
import type { KvCacheType } from './kv-cache';
import type { ModelWeights } from './model';
import { prefill, throwIfAborted, type PrefillOptions } from './prefill';
import { Sampler } from './sampler';
import { StopMatcher } from './stop';
import { SpeculativeDecoder, type SpeculationOptions } from './speculative-decode';
import { IncrementalDecoder, type TextCodec } from './tokenizer';
import { LogprobQueue, PromptScorer } from './logprobs-steps';

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
  const seq = new Sequence(k, weights, req.promptTokens.length + req.maxTokens, { kvType: ctx.kvCacheType, ...(req.promptLogprobs ? { logits: 'all' as const } : {}) });
  const sampler = new Sampler(req.sampling);
  const decoder = new IncrementalDecoder(ctx.codec ?? { decode: () => '' });
  const stop = new StopMatcher(req.stop);
  let completion = 0;
  let finishReason: GenerateResult['finishReason'] = 'length';
  try {
    // the next token: sampled here from logits computed here, or where the head is (one round trip a step); logprobs
    // and grammars need the logits row here, so they fetch it from a remote head instead of sampling there
    const needsRow = req.logprobs !== undefined || req.constraint !== undefined || req.promptLogprobs === true;
    const remote = ctx.experts.head?.sample && !needsRow ? ctx.experts.head : null;
    const row = new Float32Array(weights.arch.vocabSize); // every step's logits, read by the sampler before the next
    const scored = new LogprobQueue(req.logprobs);
    let next: { token: number; embedding?: Float32Array };
    const pick = async (logits: Float32Array): Promise<number> => {
      scored.score(logits); // the raw distribution, before the grammar's mask
      if (req.constraint) await req.constraint.mask(logits);
      const token = sampler.sample(logits);
      scored.took(token, logits);
      if (req.constraint && !req.constraint.accept(token)) throw new Error(`grammar refused token ${token} it allowed`);
      return token;
    };
    // `scorer` (echo): the prompt's rows are scored as prefill makes them, the last one sampled from
    const step = async (run: (opts: PrefillOptions) => Promise<Float32Array[]>, scorer?: PromptScorer | null): Promise<typeof next> => {
      if (scorer) return { token: await pick(await scorer.run(run)) };
      if (!remote) return { token: await pick((await run({ logits: 'last', into: row }))[0]) };
      await run({ logits: 'hidden' });
      return remote.sample!(seq.h, req.sampling, sampler.draw());
    };
    const prefillPrompt: PromptPrefill = ctx.prefill ?? ((s, tokens, opts) => prefill(k, s, ctx.experts, tokens, opts));
    const prompt = req.promptLogprobs ? new PromptScorer(req.promptTokens, req.logprobs ?? 0) : null;
    next = await step((opts) => prefillPrompt(seq, req.promptTokens, { ...opts, signal: req.signal }), prompt);
    if (prompt) yield { text: '', promptLogprobs: prompt.logprobs };
    // speculation drafts and verifies with logits here, and emits tokens without pick(): a head that samples remotely,
    // logprobs and grammars decode token by token
    const spec = ctx.speculation && !remote && !needsRow ? new SpeculativeDecoder(k, seq, ctx.experts, ctx.speculation, req.sampling, () => sampler.draw()) : null;
    while (completion < req.maxTokens) {
      throwIfAborted(req.signal);
      const token = next.token;
      completion++;
      if (ctx.eosTokenIds.includes(token) || req.constraint?.done) {
        finishReason = 'stop';
        break;
      }
      scored.commit();
      const text = stop.push(decoder.push(token));
      if (text) yield { text, ...scored.take() };
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
    if (rest || scored.pending) yield { text: rest, ...scored.take() };
    return { finishReason, promptTokens: req.promptTokens.length, completionTokens: completion };
  } finally {
    req.constraint?.release();
    seq.release();
  }
}

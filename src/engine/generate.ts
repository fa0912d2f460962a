// The generation loop: prefill the prompt in chunks, then decode token by token with sampling, stop
// strings, EOS and cancellation. Each generation owns its Sequence (KV cache, scratch) and frees it.
import { ContextOverflowError, InvalidRequestError } from '../common/errors';
import type { Kernels } from '../kernels/types';
import type { GenerateChunk, GenerateRequest, GenerateResult } from './api';
import type { ExpertExecutor } from './experts';
import { forward, PREFILL_CHUNK, Sequence } from './forward';
import type { ModelWeights } from './model';
import { Sampler } from './sampler';
import { StopMatcher } from './stop';
import { IncrementalDecoder, type TextCodec } from './tokenizer';

export interface GenerationContext {
  kernels: Kernels;
  weights: ModelWeights;
  experts: ExpertExecutor;
  codec: Pick<TextCodec, 'decode'>;
  eosTokenIds: readonly number[];
}

/** Checks prompt + maxTokens against the context; throws the client-facing error. */
export function checkContext(contextLength: number, promptTokens: number, maxTokens: number): void {
  if (promptTokens < 1) throw new InvalidRequestError('the prompt is empty after tokenisation', 'prompt', 'empty_prompt');
  if (promptTokens + maxTokens > contextLength) throw new ContextOverflowError(promptTokens + maxTokens, contextLength);
}

export async function* generateTokens(ctx: GenerationContext, req: GenerateRequest): AsyncGenerator<GenerateChunk, GenerateResult, void> {
  const { kernels: k, weights } = ctx;
  checkContext(weights.arch.contextLength, req.promptTokens.length, req.maxTokens);
  const seq = new Sequence(k, weights, req.promptTokens.length + req.maxTokens);
  const sampler = new Sampler(req.sampling);
  const decoder = new IncrementalDecoder(ctx.codec);
  const stop = new StopMatcher(req.stop);
  let completion = 0;
  let finishReason: GenerateResult['finishReason'] = 'length';
  try {
    let logits: Float32Array | undefined;
    for (let i = 0; i < req.promptTokens.length; i += PREFILL_CHUNK) {
      throwIfAborted(req.signal);
      const rows = await forward(k, seq, ctx.experts, req.promptTokens.slice(i, i + PREFILL_CHUNK), { logits: 'last' });
      logits = rows[0];
    }
    while (completion < req.maxTokens) {
      throwIfAborted(req.signal);
      const token = sampler.sample(logits!);
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
      if (completion < req.maxTokens) logits = (await forward(k, seq, ctx.experts, [token], { logits: 'last' }))[0];
    }
    const rest = stop.flush();
    if (rest) yield { text: rest };
    return { finishReason, promptTokens: req.promptTokens.length, completionTokens: completion };
  } finally {
    seq.release();
  }
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('generation cancelled', 'AbortError');
}

// What the two completion routes share: resolving the served model, turning request fields into a
// GenerateRequest with OpenAI's context rules, cancellation, and running the generation.
import type { Context } from 'hono';
import type { GenerateChunk, GenerateRequest, GenerateResult, Generation, MoeOptions, MoeUsage, TextModel } from '../engine/api';
import { appConfig, type AppConfig, type AppEnv } from '../env';
import { InvalidRequestError, ModelNotFoundError } from '../errors';
import type { GenerationFields } from '../schemas/common';

/** Where routes get the model from; the Worker entry binds it to the per-isolate cache. */
export interface ModelProvider {
  getModel(env: AppEnv, waitUntil: (p: Promise<unknown>) => void): Promise<TextModel>;
}

export type AppContext = Context<{ Bindings: AppEnv }>;

export type { Generation };

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** where the routed experts ran (models that split experts with a backend) */
  moe?: MoeUsage;
}

/** The response header that says a generation ran without the backend, and why. */
export const DEGRADED_HEADER = 'x-moe-degraded';

/** Checks `model` against the served id (404 before any loading), then loads it. */
export async function resolveModel(c: AppContext, provider: ModelProvider, requested: string): Promise<TextModel> {
  const cfg = appConfig(c.env);
  if (requested !== cfg.modelId) throw new ModelNotFoundError(requested);
  return provider.getModel(c.env, waitUntilOf(c));
}

export function waitUntilOf(c: AppContext): (p: Promise<unknown>) => void {
  try {
    const ctx = c.executionCtx;
    return (p) => ctx.waitUntil(p);
  } catch {
    return () => {}; // no execution context (e.g. app.request in a plain test)
  }
}

/**
 * OpenAI's rules: an explicit max_tokens beyond the context is a 400 on `max_tokens`; a prompt that does
 * not leave room for the requested tokens is 400 `context_length_exceeded`; without max_tokens the
 * completion may use the model default, capped by what the context has left.
 */
export function generateRequest(
  model: TextModel,
  promptTokens: number[],
  f: GenerationFields,
  promptParam: 'messages' | 'prompt',
  signal: AbortSignal,
  moe?: MoeOptions,
): GenerateRequest {
  const ctx = model.contextLength;
  const n = promptTokens.length;
  if (n === 0) throw new InvalidRequestError(`'${promptParam}' is empty`, promptParam, 'invalid_value');
  const requested = f.max_completion_tokens ?? f.max_tokens ?? null;
  const maxParam = f.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  if (requested !== null && requested >= ctx) {
    throw new InvalidRequestError(
      `${maxParam} is too large: ${requested}. This model's maximum context length is ${ctx} tokens, so ${maxParam} must be less than that`,
      maxParam,
      'invalid_value',
    );
  }
  if (n + (requested ?? 1) > ctx) {
    throw new InvalidRequestError(
      `This model's maximum context length is ${ctx} tokens. However, you requested ${n + (requested ?? 1)} tokens ` +
        `(${n} in the ${promptParam}, ${requested ?? 1} in the completion). Please reduce the length of the ${promptParam} or completion.`,
      promptParam,
      'context_length_exceeded',
    );
  }
  const stop = f.stop == null ? [] : typeof f.stop === 'string' ? [f.stop] : f.stop;
  return {
    promptTokens,
    maxTokens: requested ?? Math.min(model.defaults.maxTokens, ctx - n),
    sampling: {
      temperature: f.temperature ?? model.defaults.temperature,
      topP: f.top_p ?? model.defaults.topP,
      topK: f.top_k ?? 0,
      ...(f.seed != null ? { seed: f.seed } : {}),
    },
    stop,
    signal,
    ...(moe ? { moe } : {}),
  };
}

/** The deployment's cold-expert settings with the request's `moe.policy` on top. */
export function moeOptions(cfg: AppConfig, f: GenerationFields): MoeOptions {
  return { policy: f.moe?.policy ?? cfg.coldPolicy, degradedPolicy: cfg.degradedPolicy, backend: cfg.backend };
}

/** x-moe-degraded when the generation has degraded so far (for streams: as of its first step). */
export function degradedHeaders(gen: Generation): Record<string, string> {
  const reason = gen.moe?.degraded;
  return reason ? { [DEGRADED_HEADER]: reason } : {};
}

/** An AbortController that fires when the client disconnects (request.signal) or cancels the stream. */
export function cancellation(c: AppContext): AbortController {
  const ac = new AbortController();
  const clientSignal = c.req.raw.signal;
  if (clientSignal.aborted) ac.abort(clientSignal.reason);
  else clientSignal.addEventListener('abort', () => ac.abort(clientSignal.reason), { once: true });
  return ac;
}

/**
 * Starts the generation and waits for its first step, so that errors raised before any output
 * (context, prefill, a bad expert shard) still get a proper HTTP status instead of an in-band event.
 */
export async function startGeneration(model: TextModel, req: GenerateRequest): Promise<{ gen: Generation; first: IteratorResult<GenerateChunk, GenerateResult> }> {
  const gen = model.generate(req);
  return { gen, first: await gen.next() };
}

/** Drains a started generation into one string. */
export async function collect(gen: Generation, first: IteratorResult<GenerateChunk, GenerateResult>): Promise<{ text: string; result: GenerateResult }> {
  let text = '';
  let r = first;
  while (!r.done) {
    text += r.value.text;
    r = await gen.next();
  }
  return { text, result: r.value };
}

export function usageOf(r: GenerateResult): Usage {
  const u: Usage = { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
  if (r.moe) u.moe = { ...r.moe, remote_ms: round(r.moe.remote_ms), remote_wait_ms: round(r.moe.remote_wait_ms) };
  return u;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function newId(prefix: 'chatcmpl' | 'cmpl'): string {
  return `${prefix}-${crypto.randomUUID().replaceAll('-', '')}`;
}

export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

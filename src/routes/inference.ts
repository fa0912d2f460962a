// What the two completion routes share: resolving the served model, turning request fields into a
// GenerateRequest with OpenAI's context rules, cancellation, and running the generation.
import type { Context } from 'hono';
import type { GenerateChunk, GenerateRequest, GenerateResult, Generation, MoeOptions, MoeUsage, TextModel, TokenConstraint, TokenLogprob } from '../engine/api';
import { appConfig, type AppConfig, type AppEnv } from '../config/env';
import { InvalidRequestError, ModelNotFoundError } from '../common/errors';
import { checkContext } from '../engine/context';
import { sseResponse } from '../http/sse';
import type { HotSetControl } from '../hotset/control';
import { admission, releasedWhenDone, type GenerationLimits } from '../runtime/admission';
import type { GenerationFields } from '../schemas/common';

/** Where routes get the model from; the Worker entry binds it to the per-isolate cache. */
export interface ModelProvider {
  getModel(env: AppEnv, waitUntil: (p: Promise<unknown>) => void): Promise<ServingModel>;
}

/**
 * What the routes serve: a TextModel, plus the run-time hot set when the model has one (the Worker's ServedModel;
 * the admin routes use it). Declared here, not in the engine: the hot set is a serving concern.
 */
export interface ServingModel extends TextModel {
  readonly hotSet?: HotSetControl;
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

/** The deployment's per-request limits (MAX_PROMPT_TOKENS, MAX_COMPLETION_TOKENS). */
export type RequestLimits = Pick<AppConfig, 'maxPromptTokens' | 'maxCompletionTokens'>;

/**
 * The context rule first (checkContext, OpenAI's errors: an empty prompt, a max_tokens beyond the context, a
 * prompt that does not leave room for the completion); without max_tokens the completion may use the model
 * default, capped by what the context has left. Then the deployment's limits:
 * a prompt over MAX_PROMPT_TOKENS or a max_tokens over MAX_COMPLETION_TOKENS is a 400, and the default
 * completion length is capped by MAX_COMPLETION_TOKENS.
 */
export function generateRequest(
  model: TextModel,
  promptTokens: number[],
  f: GenerationFields,
  promptParam: 'messages' | 'prompt',
  signal: AbortSignal,
  moe?: MoeOptions,
  limits?: RequestLimits,
): GenerateRequest {
  const ctx = model.contextLength;
  const n = promptTokens.length;
  const requested = f.max_completion_tokens ?? f.max_tokens ?? null;
  const maxParam = f.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  checkContext(ctx, n, requested, { prompt: promptParam, maxTokens: maxParam });
  // the deployment's limits, once the model's own context rules (OpenAI's errors) are met
  if (limits && n > limits.maxPromptTokens) {
    throw new InvalidRequestError(
      `The prompt is ${n} tokens long${promptParam === 'messages' ? ' (messages after the chat template)' : ''}; this server accepts at most ` +
        `${limits.maxPromptTokens} prompt tokens per request (MAX_PROMPT_TOKENS). Please shorten the ${promptParam}.`,
      promptParam,
      'prompt_too_long',
    );
  }
  if (limits && requested !== null && requested > limits.maxCompletionTokens) {
    throw new InvalidRequestError(
      `${maxParam} is too large: ${requested}. This server generates at most ${limits.maxCompletionTokens} tokens per request (MAX_COMPLETION_TOKENS)`,
      maxParam,
      'invalid_value',
    );
  }
  const stop = f.stop == null ? [] : typeof f.stop === 'string' ? [f.stop] : f.stop;
  return {
    promptTokens,
    maxTokens: requested ?? Math.min(model.defaults.maxTokens, ctx - n, limits?.maxCompletionTokens ?? Infinity),
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

/** The deployment's cold-expert settings with the request's `moe.policy`, `moe.profile` (checked by the model) and `moe.speculative` on top. */
export function moeOptions(cfg: AppConfig, f: GenerationFields): MoeOptions {
  const profile = f.moe?.profile;
  return {
    policy: f.moe?.policy ?? cfg.coldPolicy,
    degradedPolicy: cfg.degradedPolicy,
    backend: cfg.backend,
    remotePrefillMinTokens: cfg.remotePrefillMinTokens,
    speculativeMaxTokens: f.moe?.speculative === false ? 0 : cfg.speculativeMaxTokens,
    speculativeDraftPolicy: cfg.speculativeDraftPolicy,
    ...(profile ? { profile } : {}),
  };
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
 * Admits the generation (MAX_CONCURRENT_GENERATIONS, ISOLATE_MEMORY_MB: 429 / 503 / 400 before anything is
 * allocated), starts it and waits for its first step, so that errors raised before any output (context,
 * prefill, a bad expert shard) still get a proper HTTP status instead of an in-band event. The admission is
 * given back when the generation ends, however it ends.
 */
export async function startGeneration(
  model: TextModel,
  req: GenerateRequest,
  limits?: GenerationLimits,
  params: { promptParam: string; maxTokensParam: string } = { promptParam: 'prompt', maxTokensParam: 'max_tokens' },
  extraBytes = 0,
): Promise<{ gen: Generation; first: IteratorResult<GenerateChunk, GenerateResult> }> {
  const ticket = limits
    ? admission.admit(limits, { promptTokens: req.promptTokens.length, maxTokens: req.maxTokens, ...params, logitRows: req.promptLogprobs ? 'all' : 'last', extraBytes }, model.memory ?? null)
    : { release() {} };
  let gen: Generation;
  try {
    gen = releasedWhenDone(model.generate(req), () => ticket.release());
  } catch (e) {
    ticket.release();
    throw e;
  }
  return { gen, first: await gen.next() };
}

/** The request fields a limit error names: the prompt's and the one that set the completion length. */
export function limitParams(f: GenerationFields, promptParam: 'messages' | 'prompt'): { promptParam: string; maxTokensParam: string } {
  return { promptParam, maxTokensParam: f.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens' };
}

/** A choice drained: its text, summary, and (when asked for) its tokens' and its prompt's log probabilities. */
export interface Collected {
  text: string;
  result: GenerateResult;
  logprobs: TokenLogprob[];
  promptLogprobs?: (TokenLogprob | null)[];
}

/** Drains a started generation into one string. */
export async function collect(gen: Generation, first: IteratorResult<GenerateChunk, GenerateResult>): Promise<Collected> {
  let text = '';
  const logprobs: TokenLogprob[] = [];
  let promptLogprobs: (TokenLogprob | null)[] | undefined;
  let r = first;
  while (!r.done) {
    text += r.value.text;
    if (r.value.logprobs) logprobs.push(...r.value.logprobs);
    promptLogprobs ??= r.value.promptLogprobs;
    r = await gen.next();
  }
  return { text, result: r.value, logprobs, ...(promptLogprobs ? { promptLogprobs } : {}) };
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

/**
 * What both completion routes do before answering: resolve the model (404), encode the prompt, apply the
 * context rules and limits (400), admit and start one generation per choice (`n`, 429/503) and run each one's
 * first step. Choices are admitted one after another (a refusal gives back the ones already admitted); choice i
 * is seeded with seed + i when a seed is given, so the choices differ and a request repeats. They run concurrently.
 */
export async function beginChoices(
  c: AppContext,
  provider: ModelProvider,
  body: GenerationFields & { model: string },
  encode: (model: TextModel) => number[],
  promptParam: 'messages' | 'prompt',
  extras: ChoiceExtras = {},
): Promise<{ cfg: AppConfig; model: TextModel; prompt: number[]; started: { gen: Generation; first: IteratorResult<GenerateChunk, GenerateResult> }[]; abort: AbortController }> {
  const cfg = appConfig(c.env);
  const n = body.n ?? 1;
  const model = await resolveModel(c, provider, body.model);
  const abort = cancellation(c);
  const prompt = encode(model);
  const constraint = extras.constraint ? await extras.constraint(model, n) : null; // compiled once, a matcher per choice
  const started: { gen: Generation; first: IteratorResult<GenerateChunk, GenerateResult> }[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const seeded = body.seed != null ? { ...body, seed: body.seed + i } : body;
      const req: GenerateRequest = { ...generateRequest(model, prompt, seeded, promptParam, abort.signal, moeOptions(cfg, body), cfg), ...extras.request };
      if (constraint) req.constraint = constraint.matchers[i];
      started.push(await startGeneration(model, req, cfg, limitParams(body, promptParam), constraint?.bytes ?? 0));
    }
  } catch (e) {
    await Promise.all(started.map((s) => s.gen.return(undefined as never).catch(() => {})));
    for (const m of constraint?.matchers ?? []) m.release(); // those no generation took yet (release is idempotent)
    throw e;
  }
  return { cfg, model, prompt, started, abort };
}

/** What a route adds to each choice's request: logprobs, and a grammar compiled once with a matcher per choice. */
export interface ChoiceExtras {
  request?: Pick<GenerateRequest, 'logprobs' | 'promptLogprobs'>;
  /** compiles the request's grammar against the model with a matcher per choice (400s for bad schemas come from here) */
  constraint?: (model: TextModel, choices: number) => Promise<{ matchers: TokenConstraint[]; bytes: number }>;
}

/** Drains every choice; when one fails, the others are stopped (their memory freed) and its error thrown. */
export async function collectChoices(started: readonly { gen: Generation; first: IteratorResult<GenerateChunk, GenerateResult> }[]): Promise<Collected[]> {
  const settled = await Promise.allSettled(started.map((s) => collect(s.gen, s.first)));
  const failed = settled.find((r) => r.status === 'rejected');
  if (!failed) return settled.map((r) => (r as PromiseFulfilledResult<Collected>).value);
  await Promise.all(started.map((s) => s.gen.return(undefined as never).catch(() => {})));
  throw failed.reason;
}

/** The usage of several choices of one prompt: the prompt counted once, completions and expert picks summed. */
export function choicesUsage(results: readonly GenerateResult[]): Usage {
  const [first] = results;
  const u = usageOf({ ...first, completionTokens: results.reduce((s, r) => s + r.completionTokens, 0) });
  if (u.moe) {
    const all = results.map((r) => r.moe!);
    const sum = (k: 'hot_hits' | 'shard_hits' | 'cold_calls' | 'remote_ms' | 'remote_wait_ms') => all.reduce((s, m) => s + m[k], 0);
    u.moe = { ...u.moe, hot_hits: sum('hot_hits'), shard_hits: sum('shard_hits'), cold_calls: sum('cold_calls'), remote_ms: round(sum('remote_ms')), remote_wait_ms: round(sum('remote_wait_ms')), degraded: all.find((m) => m.degraded)?.degraded ?? null };
  }
  return u;
}

/**
 * The SSE response of a request's generations (one per choice). `events` must close them in its finally.
 * x-moe-degraded is as known after the first step (prefill); later degradation shows in the usage chunk. Cancel
 * stops the generations and closes them even if the stream was cancelled before its first read (events() never
 * started, so its finally would not run): that frees their KV caches and admission.
 */
export function generationStream(gens: readonly Generation[], abort: AbortController, events: AsyncGenerator<unknown, void, void>): Response {
  const res = sseResponse(events, (reason) => {
    abort.abort(reason);
    for (const g of gens) void g.return(undefined as never).catch(() => {});
  });
  for (const g of gens) for (const [k, v] of Object.entries(degradedHeaders(g))) res.headers.set(k, v);
  return res;
}

/**
 * The steps of several choices as they come, each tagged with its choice index: whichever generation has its next
 * piece first goes first, so a slow choice does not hold the others back. Ends when every choice has finished;
 * `results[i]` is then choice i's summary.
 */
export async function* interleaveChoices(started: readonly { gen: Generation; first: IteratorResult<GenerateChunk, GenerateResult> }[], results: GenerateResult[]): AsyncGenerator<({ index: number } & GenerateChunk) | { index: number; finish: GenerateResult }, void, void> {
  type Step = { index: number; r: IteratorResult<GenerateChunk, GenerateResult> };
  const live = new Map<number, Promise<Step>>(started.map((s, index) => [index, Promise.resolve({ index, r: s.first })]));
  while (live.size > 0) {
    const { index, r } = await Promise.race(live.values());
    if (r.done) {
      live.delete(index);
      results[index] = r.value;
      yield { index, finish: r.value };
    } else {
      // a choice's next step is asked for only once the client has taken this one (the stream's backpressure)
      yield { index, ...r.value };
      const step = started[index].gen.next().then((next) => ({ index, r: next }));
      step.catch(() => {}); // a stream cancelled meanwhile rejects the other choices' steps: observed here, thrown by the race
      live.set(index, step);
    }
  }
}

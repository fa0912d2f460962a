// POST /v1/completions: OpenAI (legacy) text completions, whole or streamed, with `logprobs` (0-5 alternatives) and
// `echo` (the prompt first; with logprobs, every prompt token scored, so max_tokens 0 scores a text).
import { appConfig } from '../config/env';
import { readJsonBody } from '../http/body';
import { parseRequest } from '../schemas/common';
import { COMPLETION_UNSUPPORTED, refuseUnsupported } from '../schemas/unsupported';
import type { GenerateResult, TokenLogprob } from '../engine/api';
import { CompletionRequestSchema, promptText, type CompletionRequest } from '../schemas/completion';
import { beginChoices, choicesUsage, collectChoices, type Collected, interleaveChoices, degradedHeaders, generationStream, newId, unixSeconds, type AppContext, type ModelProvider } from './inference';
import { completionLogprobs, vocabularyFor } from './logprobs';
import { grammarConstraint, grammarSpec } from './structured';

export function completions(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const json = await readJsonBody(c.req.raw, appConfig(c.env).maxBodyBytes);
    refuseUnsupported(json, COMPLETION_UNSUPPORTED);
    const body = parseRequest(CompletionRequestSchema, json);
    return completionChoices(c, provider, body);
  };
}

/** `n` choices (1 unless asked), one generation each, answered whole or streamed with each chunk tagged by its choice. */
async function completionChoices(c: AppContext, provider: ModelProvider, body: CompletionRequest): Promise<Response> {
  const top = body.logprobs ?? undefined;
  const echo = body.echo === true;
  const bestOf = body.best_of ?? 1;
  const grammar = grammarSpec(body.response_format);
  // best_of ranks its generations by their tokens' log probabilities, so they are computed even when not returned
  const request = { ...(top !== undefined ? { logprobs: top, promptLogprobs: echo } : bestOf > 1 ? { logprobs: 0 } : {}) };
  const { cfg, model, prompt, started, abort } = await beginChoices(c, provider, { ...body, n: Math.max(bestOf, body.n ?? 1) }, (m) => {
    if (top !== undefined) vocabularyFor(m, 'logprobs'); // tokens are printed as text
    return m.encode(promptText(body));
  }, 'prompt', { request, ...(grammar ? { constraint: grammarConstraint(grammar) } : {}) });
  const meta = { id: newId('cmpl'), object: 'text_completion', created: unixSeconds(), model: cfg.modelId };
  const echoed = echo ? promptText(body) : '';
  // logprobs of one piece of a choice, its text offsets continuing from where the last piece ended
  const offsets = started.map(() => 0);
  const piece = (index: number, tokens: readonly (TokenLogprob | null)[], ids: readonly number[] = []) => {
    if (top === undefined) return null;
    const { logprobs, end } = completionLogprobs(model.vocabulary!, tokens, ids, offsets[index]!);
    offsets[index] = end;
    return logprobs;
  };
  if (!body.stream) {
    const all = await collectChoices(started);
    const done = bestOf > 1 ? bestChoices(all, body.n ?? 1) : all;
    return c.json({
      ...meta,
      choices: done.map(({ text, result, logprobs, promptLogprobs }, index) => ({
        text: echoed + text,
        index,
        logprobs: top === undefined ? null : piece(index, [...(promptLogprobs ?? []), ...logprobs], prompt),
        finish_reason: result.finishReason,
      })),
      usage: choicesUsage(all.map((d) => d.result)), // every generation best_of ran
    }, 200, Object.assign({}, ...started.map((s) => degradedHeaders(s.gen))));
  }
  const includeUsage = body.stream_options?.include_usage === true;
  const chunk = (index: number, text: string, finish: string | null, logprobs: ReturnType<typeof piece> = null) => ({
    ...meta,
    choices: [{ text, index, logprobs, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  async function* events() {
    const results: GenerateResult[] = [];
    try {
      // with logprobs the prompt's scores come as each choice's first step; without, the echo goes out at once
      if (echo && top === undefined) for (let i = 0; i < started.length; i++) yield chunk(i, echoed, null);
      for await (const step of interleaveChoices(started, results)) {
        if ('finish' in step) yield chunk(step.index, '', step.finish.finishReason);
        else if (step.promptLogprobs) yield chunk(step.index, echoed, null, piece(step.index, step.promptLogprobs, prompt));
        else yield chunk(step.index, step.text, null, piece(step.index, step.logprobs ?? []));
      }
      if (includeUsage) yield { ...meta, choices: [], usage: choicesUsage(results) };
    } finally {
      await Promise.all(started.map((s) => s.gen.return(undefined as never).catch(() => {})));
    }
  }
  return generationStream(started.map((s) => s.gen), abort, events());
}


/** best_of: the `n` generations with the highest mean log probability per token (OpenAI's rule), best first. */
function bestChoices(all: Collected[], n: number): Collected[] {
  const score = (c: Collected) => (c.logprobs.length ? c.logprobs.reduce((s, t) => s + t.logprob, 0) / c.logprobs.length : -Infinity);
  return [...all].sort((a, b) => score(b) - score(a)).slice(0, n);
}

// POST /v1/completions: OpenAI (legacy) text completions, whole or streamed.
import { appConfig } from '../config/env';
import { readJsonBody } from '../http/body';
import { parseRequest } from '../schemas/common';
import { COMPLETION_UNSUPPORTED, refuseUnsupported } from '../schemas/unsupported';
import type { GenerateResult } from '../engine/api';
import { CompletionRequestSchema, promptText, type CompletionRequest } from '../schemas/completion';
import { beginChoices, choicesUsage, collectChoices, interleaveChoices, degradedHeaders, generationStream, newId, unixSeconds, type AppContext, type ModelProvider } from './inference';

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
  const { cfg, started, abort } = await beginChoices(c, provider, body, (model) => model.encode(promptText(body)), 'prompt');
  const meta = { id: newId('cmpl'), object: 'text_completion', created: unixSeconds(), model: cfg.modelId };
  if (!body.stream) {
    const done = await collectChoices(started);
    return c.json({
      ...meta,
      choices: done.map(({ text, result }, index) => ({ text, index, logprobs: null, finish_reason: result.finishReason })),
      usage: choicesUsage(done.map((d) => d.result)),
    }, 200, Object.assign({}, ...started.map((s) => degradedHeaders(s.gen))));
  }
  const includeUsage = body.stream_options?.include_usage === true;
  const chunk = (index: number, text: string, finish: string | null) => ({
    ...meta,
    choices: [{ text, index, logprobs: null, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  async function* events() {
    const results: GenerateResult[] = [];
    try {
      for await (const step of interleaveChoices(started, results)) {
        yield 'text' in step ? chunk(step.index, step.text, null) : chunk(step.index, '', step.finish.finishReason);
      }
      if (includeUsage) yield { ...meta, choices: [], usage: choicesUsage(results) };
    } finally {
      await Promise.all(started.map((s) => s.gen.return(undefined as never).catch(() => {})));
    }
  }
  return generationStream(started.map((s) => s.gen), abort, events());
}

// POST /v1/completions: OpenAI (legacy) text completions, whole or streamed.
import { appConfig } from '../config/env';
import { readJsonBody } from '../http/body';
import { parseRequest } from '../schemas/common';
import { COMPLETION_UNSUPPORTED, refuseUnsupported } from '../schemas/unsupported';
import { CompletionRequestSchema, promptText } from '../schemas/completion';
import { beginChoices, beginGeneration, choicesUsage, collect, collectChoices, degradedHeaders, generationStream, newId, unixSeconds, usageOf, type AppContext, type ModelProvider } from './inference';

export function completions(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const json = await readJsonBody(c.req.raw, appConfig(c.env).maxBodyBytes);
    refuseUnsupported(json, COMPLETION_UNSUPPORTED);
    const body = parseRequest(CompletionRequestSchema, json);
    if ((body.n ?? 1) > 1) {
      const { cfg, started } = await beginChoices(c, provider, body, (model) => model.encode(promptText(body)), 'prompt');
      const done = await collectChoices(started);
      return c.json({
        id: newId('cmpl'), object: 'text_completion', created: unixSeconds(), model: cfg.modelId,
        choices: done.map(({ text, result }, index) => ({ text, index, logprobs: null, finish_reason: result.finishReason })),
        usage: choicesUsage(done.map((d) => d.result)),
      }, 200, Object.assign({}, ...started.map((s) => degradedHeaders(s.gen))));
    }
    const { cfg, gen, first, abort } = await beginGeneration(c, provider, body, (model) => model.encode(promptText(body)), 'prompt');
    const meta = { id: newId('cmpl'), object: 'text_completion', created: unixSeconds(), model: cfg.modelId };

    if (!body.stream) {
      const { text, result } = await collect(gen, first);
      return c.json({
        ...meta,
        choices: [{ text, index: 0, logprobs: null, finish_reason: result.finishReason }],
        usage: usageOf(result),
      }, 200, degradedHeaders(gen));
    }

    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (text: string, finish: string | null) => ({
      ...meta,
      choices: [{ text, index: 0, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    async function* events() {
      try {
        let r = first;
        while (!r.done) {
          yield chunk(r.value.text, null);
          r = await gen.next();
        }
        yield chunk('', r.value.finishReason);
        if (includeUsage) yield { ...meta, choices: [], usage: usageOf(r.value) };
      } finally {
        await gen.return(undefined as never);
      }
    }
    return generationStream(gen, abort, events());
  };
}

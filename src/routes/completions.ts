// POST /v1/completions: OpenAI (legacy) text completions, whole or streamed.
import { appConfig } from '../env';
import { readJsonBody } from '../http/body';
import { sseResponse } from '../http/sse';
import { parseRequest } from '../schemas/common';
import { CompletionRequestSchema, promptText } from '../schemas/completion';
import {
  cancellation,
  collect,
  degradedHeaders,
  generateRequest,
  limitParams,
  moeOptions,
  newId,
  resolveModel,
  startGeneration,
  unixSeconds,
  usageOf,
  type AppContext,
  type ModelProvider,
} from './inference';

export function completions(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const cfg = appConfig(c.env);
    const body = parseRequest(CompletionRequestSchema, await readJsonBody(c.req.raw, cfg.maxBodyBytes));
    const model = await resolveModel(c, provider, body.model);
    const abort = cancellation(c);
    const req = generateRequest(model, model.encode(promptText(body)), body, 'prompt', abort.signal, moeOptions(cfg, body), cfg);
    const { gen, first } = await startGeneration(model, req, cfg, limitParams(body, 'prompt'));
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
    // x-moe-degraded as known after the first step (prefill); later degradation shows in the usage chunk
    // cancel: stop the generation, and close it even if the stream was cancelled before its first read
    // (events() never started, so its finally would not run): that frees its KV cache and admission
    const res = sseResponse(events(), (reason) => {
      abort.abort(reason);
      void gen.return(undefined as never).catch(() => {});
    });
    for (const [k, v] of Object.entries(degradedHeaders(gen))) res.headers.set(k, v);
    return res;
  };
}

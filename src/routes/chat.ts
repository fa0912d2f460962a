// POST /v1/chat/completions: OpenAI chat completions, whole or streamed (SSE chunks, first with the role).
import type { ChatMessage } from '../engine/api';
import { appConfig } from '../env';
import { readJsonBody } from '../http/body';
import { sseResponse } from '../http/sse';
import { ChatCompletionRequestSchema, messageText } from '../schemas/chat';
import { parseRequest } from '../schemas/common';
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

export function chatCompletions(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const cfg = appConfig(c.env);
    const body = parseRequest(ChatCompletionRequestSchema, await readJsonBody(c.req.raw, cfg.maxBodyBytes));
    const model = await resolveModel(c, provider, body.model);
    const messages: ChatMessage[] = body.messages.map((m) => ({ role: m.role, content: messageText(m) }));
    const abort = cancellation(c);
    const req = generateRequest(model, model.encodeChat(messages), body, 'messages', abort.signal, moeOptions(cfg, body), cfg);
    const { gen, first } = await startGeneration(model, req, cfg, limitParams(body, 'messages'));
    const meta = { id: newId('chatcmpl'), created: unixSeconds(), model: cfg.modelId };

    if (!body.stream) {
      const { text, result } = await collect(gen, first);
      return c.json({
        ...meta,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: result.finishReason }],
        usage: usageOf(result),
      }, 200, degradedHeaders(gen));
    }

    const includeUsage = body.stream_options?.include_usage === true;
    // With include_usage every chunk carries `usage: null` except the last, which has empty choices.
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      ...meta,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {}),
    });
    async function* events() {
      try {
        yield chunk({ role: 'assistant', content: '' }, null);
        let r = first;
        while (!r.done) {
          yield chunk({ content: r.value.text }, null);
          r = await gen.next();
        }
        yield chunk({}, r.value.finishReason);
        if (includeUsage) yield { ...meta, object: 'chat.completion.chunk', choices: [], usage: usageOf(r.value) };
      } finally {
        await gen.return(undefined as never); // frees the generation's memory if we stopped early
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

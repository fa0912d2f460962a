// POST /v1/chat/completions: OpenAI chat completions, whole or streamed (SSE chunks, first with the role).
import type { ChatMessage, GenerateResult, TokenLogprob } from '../engine/api';
import { chatLogprobs, vocabularyFor } from './logprobs';
import { appConfig } from '../config/env';
import { readJsonBody } from '../http/body';
import { ChatCompletionRequestSchema, messageText, type ChatCompletionRequest } from '../schemas/chat';
import { parseRequest } from '../schemas/common';
import { CHAT_UNSUPPORTED, refuseUnsupported } from '../schemas/unsupported';
import { beginChoices, choicesUsage, collectChoices, interleaveChoices, degradedHeaders, generationStream, newId, unixSeconds, type AppContext, type ModelProvider } from './inference';

export function chatCompletions(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const json = await readJsonBody(c.req.raw, appConfig(c.env).maxBodyBytes);
    refuseUnsupported(json, CHAT_UNSUPPORTED);
    const body = parseRequest(ChatCompletionRequestSchema, json);
    const messages: ChatMessage[] = body.messages.map((m) => ({ role: m.role, content: messageText(m) }));
    return chatChoices(c, provider, body, messages);
  };
}

/** `n` choices (1 unless asked), one generation each, answered whole or streamed with each chunk tagged by its choice. */
async function chatChoices(c: AppContext, provider: ModelProvider, body: ChatCompletionRequest, messages: ChatMessage[]): Promise<Response> {
  const top = body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
  const { cfg, model, started, abort } = await beginChoices(c, provider, body, (m) => (top !== undefined && vocabularyFor(m, 'logprobs'), m.encodeChat(messages)), 'messages', {
    request: top !== undefined ? { logprobs: top } : {},
  });
  const logprobsOf = (tokens: readonly TokenLogprob[] | undefined) => (top === undefined ? null : { content: chatLogprobs(model.vocabulary!, tokens ?? []), refusal: null });
  const meta = { id: newId('chatcmpl'), created: unixSeconds(), model: cfg.modelId };
  if (!body.stream) {
    const done = await collectChoices(started);
    return c.json({
      ...meta,
      object: 'chat.completion',
      choices: done.map(({ text, result, logprobs }, index) => ({ index, message: { role: 'assistant', content: text, refusal: null }, logprobs: logprobsOf(logprobs), finish_reason: result.finishReason })),
      usage: choicesUsage(done.map((d) => d.result)),
    }, 200, Object.assign({}, ...started.map((s) => degradedHeaders(s.gen))));
  }
  const includeUsage = body.stream_options?.include_usage === true;
  // With include_usage every chunk carries `usage: null` except the last, which has empty choices.
  const chunk = (index: number, delta: Record<string, unknown>, finish: string | null, logprobs: ReturnType<typeof logprobsOf> = null) => ({
    ...meta,
    object: 'chat.completion.chunk',
    choices: [{ index, delta, logprobs, finish_reason: finish }],
    ...(includeUsage ? { usage: null } : {}),
  });
  async function* events() {
    const results: GenerateResult[] = [];
    try {
      for (let i = 0; i < started.length; i++) yield chunk(i, { role: 'assistant', content: '' }, null);
      for await (const step of interleaveChoices(started, results)) {
        yield 'text' in step ? chunk(step.index, { content: step.text }, null, logprobsOf(step.logprobs)) : chunk(step.index, {}, step.finish.finishReason);
      }
      if (includeUsage) yield { ...meta, object: 'chat.completion.chunk', choices: [], usage: choicesUsage(results) };
    } finally {
      await Promise.all(started.map((s) => s.gen.return(undefined as never).catch(() => {}))); // frees every choice's memory
    }
  }
  return generationStream(started.map((s) => s.gen), abort, events());
}

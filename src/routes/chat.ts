// POST /v1/chat/completions: OpenAI chat completions, whole or streamed (SSE chunks, first with the role), with
// logprobs, structured output (response_format) and tool calls. With tools in play, streamed text that may be the
// start of a call is held back until the reply is complete, then sent as tool_calls (finish_reason "tool_calls") or content.
import type { GenerateResult, TokenLogprob } from '../engine/api';
import { appConfig } from '../config/env';
import { readJsonBody } from '../http/body';
import { ChatCompletionRequestSchema, type ChatCompletionRequest } from '../schemas/chat';
import { parseRequest } from '../schemas/common';
import { CHAT_UNSUPPORTED, refuseUnsupported } from '../schemas/unsupported';
import { ToolCallStream } from '../grammar/tool-formats';
import { replyToolCalls, templateMessages, toolPlan, type ToolPlan } from './chat-tools';
import { beginChoices, choicesUsage, collectChoices, interleaveChoices, degradedHeaders, generationStream, newId, unixSeconds, type AppContext, type ModelProvider } from './inference';
import { chatLogprobs, vocabularyFor } from './logprobs';
import { grammarConstraint, grammarSpec } from './structured';

export function chatCompletions(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const json = await readJsonBody(c.req.raw, appConfig(c.env).maxBodyBytes);
    refuseUnsupported(json, CHAT_UNSUPPORTED);
    const body = parseRequest(ChatCompletionRequestSchema, json);
    return chatChoices(c, provider, body);
  };
}

/** `n` choices (1 unless asked), one generation each, answered whole or streamed with each chunk tagged by its choice. */
async function chatChoices(c: AppContext, provider: ModelProvider, body: ChatCompletionRequest): Promise<Response> {
  const top = body.logprobs === true ? (body.top_logprobs ?? 0) : undefined;
  let plan: ToolPlan | null = null;
  let grammar: ReturnType<typeof grammarSpec> = null;
  const { cfg, model, started, abort } = await beginChoices(
    c,
    provider,
    body,
    (m) => {
      if (top !== undefined) vocabularyFor(m, 'logprobs');
      plan = toolPlan(body, m);
      grammar = grammarSpec(body.response_format, plan);
      return m.encodeChat(templateMessages(body, plan, m.chatTemplate), plan.mode === 'none' ? {} : { tools: plan.tools });
    },
    'messages',
    {
      request: top !== undefined ? { logprobs: top } : {},
      constraint: (m, n) => (grammar ? grammarConstraint(grammar)(m, n) : Promise.resolve({ matchers: [], bytes: 0 })),
    },
  );
  const tools = plan! as ToolPlan;
  const logprobsOf = (tokens: readonly TokenLogprob[] | undefined) => (top === undefined ? null : { content: chatLogprobs(model.vocabulary!, tokens ?? []), refusal: null });
  const meta = { id: newId('chatcmpl'), created: unixSeconds(), model: cfg.modelId };
  // a finished reply: its tool calls when it made any, else its text
  const reply = (text: string, result: GenerateResult) => {
    const called = replyToolCalls(tools, text);
    return called
      ? { message: { role: 'assistant', content: called.content, refusal: null, tool_calls: called.calls }, finish: 'tool_calls' }
      : { message: { role: 'assistant', content: text, refusal: null }, finish: result.finishReason as string };
  };
  if (!body.stream) {
    const done = await collectChoices(started);
    return c.json({
      ...meta,
      object: 'chat.completion',
      choices: done.map(({ text, result, logprobs }, index) => {
        const r = reply(text, result);
        return { index, message: r.message, logprobs: logprobsOf(logprobs), finish_reason: r.finish };
      }),
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
    // with tools, each choice's text goes out only as far as it cannot be the start of a call (forced: never)
    const streams = started.map(() => (tools.mode === 'none' ? null : { split: new ToolCallStream(tools.mode === 'forced' ? 'json' : tools.format), logprobs: [] as TokenLogprob[] }));
    try {
      for (let i = 0; i < started.length; i++) yield chunk(i, { role: 'assistant', content: '' }, null);
      for await (const step of interleaveChoices(started, results)) {
        const s = streams[step.index];
        if (!('finish' in step)) {
          if (!s) {
            yield chunk(step.index, { content: step.text }, null, logprobsOf(step.logprobs));
            continue;
          }
          s.logprobs.push(...(step.logprobs ?? []));
          const out = s.split.push(step.text);
          if (out) yield chunk(step.index, { content: out }, null, logprobsOf(s.logprobs.splice(0)));
          continue;
        }
        if (!s) {
          yield chunk(step.index, {}, step.finish.finishReason);
          continue;
        }
        const { text, unsent } = s.split.end();
        const r = reply(text, step.finish);
        if (r.message.tool_calls) {
          // each call as OpenAI streams one: id, type and name first, then its arguments
          for (const [k, call] of r.message.tool_calls.entries()) {
            yield chunk(step.index, { tool_calls: [{ index: k, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }, null, k === 0 ? logprobsOf(s.logprobs) : null);
            yield chunk(step.index, { tool_calls: [{ index: k, function: { arguments: call.function.arguments } }] }, null);
          }
        } else if (unsent) yield chunk(step.index, { content: unsent }, null, logprobsOf(s.logprobs));
        yield chunk(step.index, {}, r.finish);
      }
      if (includeUsage) yield { ...meta, object: 'chat.completion.chunk', choices: [], usage: choicesUsage(results) };
    } finally {
      await Promise.all(started.map((s) => s.gen.return(undefined as never).catch(() => {}))); // frees every choice's memory
    }
  }
  return generationStream(started.map((s) => s.gen), abort, events());
}

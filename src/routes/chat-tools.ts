// Tool calling for /v1/chat/completions: checks `tools`, `tool_choice` and the conversation's tool turns, hands the
// tools to the chat template (or describes them in a system message when the template has no tool syntax), and
// turns a reply into OpenAI `tool_calls` with the parser of the model's template family.
import { InvalidRequestError } from '../common/errors';
import type { ChatMessage, TextModel, ToolDefinition } from '../engine/api';
import { forcedCallSchema, parseToolCalls, templateTakesTools, toolCallFormatOf, type ToolCallFormat } from '../grammar/tool-formats';
import { messageText, type ChatCompletionRequest } from '../schemas/chat';

/** Most calls one forced reply may hold with parallel_tool_calls (a small model might otherwise list calls until max_tokens). */
export const MAX_PARALLEL_CALLS = 4;

export interface ToolPlan {
  /** none: plain chat; auto: the model may call (parsed afterwards); forced: the grammar makes it call */
  mode: 'none' | 'auto' | 'forced';
  tools: ToolDefinition[];
  format: ToolCallFormat;
  /** with mode forced: the JSON schema of the call(s) */
  forcedSchema?: Record<string, unknown>;
}

export interface OpenAIToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The request's tool plan; a tool_choice naming no offered tool, or tool_choice without tools, is a 400. */
export function toolPlan(body: ChatCompletionRequest, model: Pick<TextModel, 'chatTemplate' | 'toolCallFormat'>): ToolPlan {
  const tools = (body.tools ?? []) as ToolDefinition[];
  const choice = body.tool_choice ?? (tools.length ? 'auto' : 'none');
  const format = toolCallFormatOf(model);
  if (choice !== 'none' && tools.length === 0) throw new InvalidRequestError(`tool_choice ${JSON.stringify(choice)} needs 'tools'`, 'tool_choice', 'invalid_value');
  if (choice === 'none') return { mode: 'none', tools, format };
  if (choice === 'auto') return { mode: 'auto', tools, format };
  // several calls only when the client says parallel_tool_calls: true (OpenAI's default is true): a small model
  // forced into a list keeps adding calls until max_tokens, so one call is the default here (docs/api.md)
  const parallel = body.parallel_tool_calls === true;
  if (choice === 'required') return { mode: 'forced', tools, format, forcedSchema: forcedCallSchema(tools, parallel, MAX_PARALLEL_CALLS) };
  const named = tools.filter((t) => t.function.name === choice.function.name);
  if (named.length === 0) {
    throw new InvalidRequestError(`tool_choice names function '${choice.function.name}', which is not in 'tools' (${tools.map((t) => t.function.name).join(', ')})`, 'tool_choice.function.name', 'invalid_value');
  }
  return { mode: 'forced', tools, format, forcedSchema: forcedCallSchema(named, false, 1) };
}

/**
 * The messages as the template gets them: assistant tool calls with parsed arguments, tool results tied to a call
 * made earlier in the conversation (a tool message answering no call is a 400 naming it). Templates without a tool
 * syntax get the tools described in a first system message and earlier calls written as the JSON they would emit.
 */
export function templateMessages(body: ChatCompletionRequest, plan: ToolPlan, template: string | null | undefined): ChatMessage[] {
  const callIds = new Set<string>();
  const native = templateTakesTools(template);
  const out: ChatMessage[] = body.messages.map((m, i) => {
    const msg: ChatMessage = { role: m.role, content: messageText(m), ...(m.name ? { name: m.name } : {}) };
    if (m.tool_calls?.length) {
      if (m.role !== 'assistant') throw new InvalidRequestError(`only assistant messages carry tool_calls`, `messages[${i}].tool_calls`, 'invalid_value');
      msg.tool_calls = m.tool_calls.map((c, j) => {
        callIds.add(c.id);
        let args: unknown;
        try {
          args = JSON.parse(c.function.arguments || '{}');
        } catch {
          throw new InvalidRequestError(`arguments is not valid JSON`, `messages[${i}].tool_calls[${j}].function.arguments`, 'invalid_value');
        }
        return { id: c.id, type: 'function' as const, function: { name: c.function.name, arguments: args } };
      });
      if (!native && !msg.content) msg.content = JSON.stringify(msg.tool_calls.map((c) => ({ name: c.function.name, arguments: c.function.arguments })));
    }
    if (m.role === 'tool') {
      if (!m.tool_call_id) throw new InvalidRequestError(`a tool message needs tool_call_id`, `messages[${i}].tool_call_id`, 'invalid_value');
      if (!callIds.has(m.tool_call_id)) {
        throw new InvalidRequestError(`tool_call_id '${m.tool_call_id}' answers no tool call of an earlier assistant message`, `messages[${i}].tool_call_id`, 'invalid_value');
      }
      msg.tool_call_id = m.tool_call_id;
    }
    return msg;
  });
  if (plan.mode !== 'none' && !native) {
    const described = plan.tools.map((t) => ({ name: t.function.name, description: t.function.description ?? '', parameters: t.function.parameters ?? {} }));
    out.unshift({ role: 'system', content: `You can call these functions:\n${JSON.stringify(described)}\nTo call one, answer only with JSON: {"name": <function name>, "arguments": <arguments object>}.` });
  }
  return out;
}

/** The reply as OpenAI tool calls (forced replies are the grammar's bare JSON), or null when it is plain content. */
export function replyToolCalls(plan: ToolPlan, text: string): { content: string | null; calls: OpenAIToolCall[] } | null {
  if (plan.mode === 'none') return null;
  const parsed = parseToolCalls(plan.mode === 'forced' ? 'json' : plan.format, text);
  if (!parsed) return null;
  const offered = new Set(plan.tools.map((t) => t.function.name));
  if (parsed.calls.some((c) => !offered.has(c.name))) return null; // a name the client never offered: leave it as text
  return {
    content: parsed.content || null,
    calls: parsed.calls.map((c) => ({ id: `call_${crypto.randomUUID().replaceAll('-', '').slice(0, 24)}`, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } })),
  };
}

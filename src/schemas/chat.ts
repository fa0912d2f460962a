// Request schema of POST /v1/chat/completions.
import { z } from 'zod';
import { MAX_TOP_LOGPROBS } from '../engine/logprobs';
import { generationFields } from './common';
import { ResponseFormatSchema } from './response-format';
import { ToolCallSchema, ToolChoiceSchema, ToolSchema } from './tools';

/** Most tools one request may offer (OpenAI's limit). */
export const MAX_TOOLS = 128;

const TextPart = z.object({ type: z.literal('text'), text: z.string() });

export const ChatMessageSchema = z.object({
  role: z.enum(['system', 'user', 'assistant', 'tool', 'developer']),
  // Text only: a string, or an array of text parts as the SDKs send for multi-part content.
  content: z.union([z.string(), z.array(TextPart)]).nullish(),
  name: z.string().optional(),
  tool_calls: z.array(ToolCallSchema).nullish(),
  tool_call_id: z.string().nullish(),
});

export const ChatCompletionRequestSchema = z
  .object({
    ...generationFields,
    messages: z.array(ChatMessageSchema).min(1, 'messages must contain at least one message'),
    logprobs: z.boolean().nullish(),
    top_logprobs: z.number().int().min(0).max(MAX_TOP_LOGPROBS).nullish(),
    tools: z.array(ToolSchema).max(MAX_TOOLS).nullish(),
    tool_choice: ToolChoiceSchema.nullish(),
    parallel_tool_calls: z.boolean().nullish(),
    response_format: ResponseFormatSchema.nullish(),
  })
  .superRefine((r, ctx) => {
    if ((r.top_logprobs ?? 0) > 0 && r.logprobs !== true) ctx.addIssue({ code: 'custom', path: ['top_logprobs'], message: 'top_logprobs needs logprobs: true' });
  });

export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;
export type ChatMessageInput = z.infer<typeof ChatMessageSchema>;

export function messageText(m: ChatMessageInput): string {
  if (m.content == null) return '';
  return typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('');
}

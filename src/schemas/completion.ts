// Request schema of POST /v1/completions (legacy text completion): one prompt per request.
import { z } from 'zod';
import { generationFields } from './common';

/** Most alternatives per token the legacy endpoint gives (OpenAI's limit for `logprobs` there). */
export const MAX_COMPLETION_LOGPROBS = 5;

export const CompletionRequestSchema = z.object({
  ...generationFields,
  prompt: z.union([z.string(), z.array(z.string()).length(1, 'only one prompt per request is supported')]),
  // 0 with echo scores the prompt without generating (how evaluation harnesses use it)
  max_tokens: z.number().int().nonnegative().nullish(),
  logprobs: z.number().int().min(0).max(MAX_COMPLETION_LOGPROBS).nullish(),
  echo: z.boolean().nullish(),
});

export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

export function promptText(r: CompletionRequest): string {
  return typeof r.prompt === 'string' ? r.prompt : r.prompt[0]!;
}

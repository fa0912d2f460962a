// Request schema of POST /v1/completions (legacy text completion): one prompt per request.
import { z } from 'zod';
import { generationFields, MAX_CHOICES } from './common';
import { ResponseFormatSchema } from './response-format';

/** Most alternatives per token the legacy endpoint gives (OpenAI's limit for `logprobs` there). */
export const MAX_COMPLETION_LOGPROBS = 5;

export const CompletionRequestSchema = z.object({
  ...generationFields,
  prompt: z.union([z.string(), z.array(z.string()).length(1, 'only one prompt per request is supported')]),
  // 0 with echo scores the prompt without generating (how evaluation harnesses use it)
  max_tokens: z.number().int().nonnegative().nullish(),
  logprobs: z.number().int().min(0).max(MAX_COMPLETION_LOGPROBS).nullish(),
  echo: z.boolean().nullish(),
  // best_of generations, the n with the highest log probability per token returned (not streamed, as OpenAI)
  best_of: z.number().int().min(1).max(MAX_CHOICES).nullish(),
  // not OpenAI's on this route, but vLLM's and llama-server's: honoured rather than silently ignored
  response_format: ResponseFormatSchema.nullish(),
}).superRefine((r, ctx) => {
  if (r.best_of != null && r.best_of < (r.n ?? 1)) ctx.addIssue({ code: 'custom', path: ['best_of'], message: 'best_of must be at least n' });
  if (r.best_of != null && r.best_of > 1 && r.stream) ctx.addIssue({ code: 'custom', path: ['best_of'], message: 'best_of cannot be streamed' });
});

export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

export function promptText(r: CompletionRequest): string {
  return typeof r.prompt === 'string' ? r.prompt : r.prompt[0]!;
}

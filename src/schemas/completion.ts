// Request schema of POST /v1/completions (legacy text completion): one prompt per request.
import { z } from 'zod';
import { generationFields } from './common';

export const CompletionRequestSchema = z.object({
  ...generationFields,
  prompt: z.union([z.string(), z.array(z.string()).length(1, 'only one prompt per request is supported')]),
});

export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

export function promptText(r: CompletionRequest): string {
  return typeof r.prompt === 'string' ? r.prompt : r.prompt[0]!;
}

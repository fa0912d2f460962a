// Request fields shared by /v1/chat/completions and /v1/completions (OpenAI semantics plus the `top_k`
// and `moe` extensions), and the one place zod issues become 400 errors naming the offending param.
import { z } from 'zod';
import { COLD_POLICIES } from '../engine/api';
import { InvalidRequestError } from '../common/errors';

/** Cold-expert policies (design §4): `moe.policy` overrides the deployment's COLD_POLICY for one request. */
export const MOE_POLICIES = COLD_POLICIES as readonly ['remote', 'substitute', 'drop'];

/**
 * Most choices (`n`) one request may ask for: each is a generation of its own (KV cache, admission), so n choices
 * cost what n requests do; 4 keeps one request from taking a quarter of MAX_CONCURRENT_GENERATIONS' default.
 */
export const MAX_CHOICES = 4;

// `null` means "use the default", as the OpenAI API treats it.
export const generationFields = {
  model: z.string().min(1),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().nonnegative().nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish(),
  n: z.number().int().nullish().refine((n) => n == null || (n >= 1 && n <= MAX_CHOICES), `n is 1..${MAX_CHOICES}`),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  moe: z
    .object({ policy: z.enum(MOE_POLICIES).optional(), profile: z.string().min(1).optional(), speculative: z.boolean().optional() })
    .strict()
    .nullish(),
};

export type GenerationFields = z.infer<z.ZodObject<typeof generationFields>>;

/** Validates `body`; the first issue becomes a 400 whose `param` is its path (e.g. `messages[0].role`). */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const param = formatPath(issue.path);
  throw new InvalidRequestError(param ? `Invalid value for '${param}': ${issue.message}` : issue.message, param || null, 'invalid_value');
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

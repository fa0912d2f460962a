// Constrained decoding for a chat request: `response_format` (json_object, json_schema) or a forced tool call,
// compiled with xgrammar against the model's vocabulary. Schemas are checked first (400 naming what is unsupported);
// a deployment without xgrammar refuses with a 400 rather than answer unconstrained text.
import { InvalidRequestError } from '../common/errors';
import type { TextModel, TokenConstraint } from '../engine/api';
import { checkSchema } from '../grammar/schema-check';
import { compileGrammar, grammarsAvailable, type GrammarSpec } from '../grammar/xgrammar';
import type { ResponseFormat } from '../schemas/response-format';
import type { ChoiceExtras } from './inference';
import { vocabularyFor } from './logprobs';
import type { ToolPlan } from './chat-tools';

/**
 * Bytes a constrained generation is counted for in admission beside its KV cache, per vocabulary entry: a live
 * compiled JSON-schema grammar with its matcher took 30-43 B per entry of granite's 49,155 (1.4-2.1 MiB;
 * bench/results/grammar.md), so 64 leaves room for larger schemas. xgrammar's base memory (16 MiB at instantiation,
 * holding the vocabulary's tables, once per isolate) is not per generation.
 */
export const GRAMMAR_BYTES_PER_VOCAB_ENTRY = 64;

/** The grammar a request asks for (null: none), checked; param names the field a 400 points at. */
export function grammarSpec(format: ResponseFormat | null | undefined, tools?: ToolPlan): { spec: GrammarSpec; param: string } | null {
  if (tools?.mode === 'forced') {
    if (format && format.type !== 'text') throw new InvalidRequestError(`response_format cannot be combined with a forced tool_choice`, 'response_format', 'invalid_value');
    tools.tools.forEach((t, i) => t.function.parameters && checkSchema(t.function.parameters, `tools[${i}].function.parameters`));
    return { spec: { kind: 'json_schema', schema: tools.forcedSchema, strict: true }, param: 'tool_choice' };
  }
  if (!format || format.type === 'text') return null;
  if (format.type === 'json_object') return { spec: { kind: 'json' }, param: 'response_format' };
  const schema = format.json_schema.schema ?? {};
  checkSchema(schema, 'response_format.json_schema.schema');
  return { spec: { kind: 'json_schema', schema, strict: format.json_schema.strict === true }, param: 'response_format.json_schema.schema' };
}

/** ChoiceExtras.constraint for `spec`: one matcher per choice, compiled once. */
export function grammarConstraint(g: { spec: GrammarSpec; param: string }): NonNullable<ChoiceExtras['constraint']> {
  return async (model: TextModel, choices: number): Promise<{ matchers: TokenConstraint[]; bytes: number }> => {
    const vocab = vocabularyFor(model, g.param);
    if (!(await grammarsAvailable())) {
      throw new InvalidRequestError(`structured output is not available on this deployment (xgrammar is not loaded)`, g.param, 'unsupported_parameter');
    }
    try {
      return { matchers: await compileGrammar(vocab, g.spec, choices), bytes: GRAMMAR_BYTES_PER_VOCAB_ENTRY * vocab.size };
    } catch (e) {
      throw new InvalidRequestError(`The grammar cannot be compiled: ${(e as Error)?.message ?? e}`, g.param, 'invalid_value');
    }
  };
}

// OpenAI request fields this server does not implement yet (issue 17). One that would change what the client gets
// back is refused with a 400 `unsupported_parameter` naming it, unless it is given at its no-op value (the
// official SDKs and frameworks send some of them as false / 0 / [] / "none" by default); a silently ignored
// `logprobs` or `response_format` would hand the client something other than it asked for. Fields that change
// nothing the client gets (user, store, metadata, ...) are accepted and ignored on purpose: docs/api.md lists both.
import { InvalidRequestError } from '../common/errors';

interface Rule {
  readonly field: string;
  /** true when the value asks for nothing (absent, null, or the field's off value) */
  readonly noop: (v: unknown) => boolean;
  readonly what: string;
}

const absent = (v: unknown) => v === undefined || v === null;
const off = (...values: unknown[]) => (v: unknown) => absent(v) || values.includes(v);
const empty = (v: unknown) => absent(v) || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);

const COMMON: readonly Rule[] = [
  { field: 'logit_bias', noop: empty, what: 'logit biases' },
  { field: 'presence_penalty', noop: off(0), what: 'presence penalties' },
  { field: 'frequency_penalty', noop: off(0), what: 'frequency penalties' },
];

export const CHAT_UNSUPPORTED: readonly Rule[] = [
  ...COMMON,
  { field: 'functions', noop: empty, what: 'function calls' },
  { field: 'function_call', noop: off('none'), what: 'function calls' },
  { field: 'prediction', noop: absent, what: 'predicted outputs' },
  { field: 'audio', noop: absent, what: 'audio output' },
  { field: 'modalities', noop: (v) => absent(v) || (Array.isArray(v) && v.every((m) => m === 'text')), what: 'output modalities other than text' },
  { field: 'reasoning_effort', noop: absent, what: 'reasoning effort (the served model does not reason)' },
  { field: 'web_search_options', noop: absent, what: 'web search' },
];

export const COMPLETION_UNSUPPORTED: readonly Rule[] = [
  ...COMMON,
  { field: 'suffix', noop: off(''), what: 'suffixes (insertion)' },
];

/** Throws the 400 for the first field of `body` that asks for something unsupported. */
export function refuseUnsupported(body: unknown, rules: readonly Rule[]): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return; // the schema's own 400 follows
  const b = body as Record<string, unknown>;
  for (const r of rules) {
    if (r.field in b && !r.noop(b[r.field])) {
      throw new InvalidRequestError(`'${r.field}' is not supported by this server yet (${r.what}); omit it or send its default`, r.field, 'unsupported_parameter');
    }
  }
}

// Engine log probabilities (token ids) in OpenAI's two shapes: chat's `logprobs.content` entries with bytes and
// top_logprobs, and the legacy completions' parallel lists (tokens, token_logprobs, top_logprobs, text_offset).
import { InvalidRequestError } from '../common/errors';
import type { TextModel, TokenLogprob, Vocabulary } from '../engine/api';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A token as text; a token that is part of a UTF-8 character spells its bytes as OpenAI does ("bytes:\xe2\x80"). */
export function tokenString(vocab: Vocabulary, id: number): string {
  const bytes = vocab.bytes(id);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return 'bytes:' + Array.from(bytes, (b) => '\\x' + b.toString(16).padStart(2, '0')).join('');
  }
}

export interface ChatLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export function chatLogprobs(vocab: Vocabulary, tokens: readonly TokenLogprob[]): ChatLogprob[] {
  const one = (id: number, logprob: number) => ({ token: tokenString(vocab, id), logprob, bytes: Array.from(vocab.bytes(id)) });
  return tokens.map((t) => ({ ...one(t.id, t.logprob), top_logprobs: t.top.map((a) => one(a.id, a.logprob)) }));
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/**
 * The legacy shape; `offset` is where the first token's text starts in the choice's text (streams continue it).
 * Special tokens (BOS) print as themselves but take no room in the text, which never contains them.
 */
export function completionLogprobs(vocab: Vocabulary, tokens: readonly (TokenLogprob | null)[], ids: readonly number[], offset: number): { logprobs: CompletionLogprobs; end: number } {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  tokens.forEach((t, i) => {
    const id = t?.id ?? ids[i]!;
    const token = tokenString(vocab, id);
    out.tokens.push(token);
    out.token_logprobs.push(t ? t.logprob : null);
    out.top_logprobs.push(t ? Object.fromEntries(t.top.map((a) => [tokenString(vocab, a.id), a.logprob])) : null);
    out.text_offset.push(at);
    if (!vocab.special(id)) at += token.length;
  });
  return { logprobs: out, end: at };
}

/** The model's vocabulary, or the 400 for logprobs asked of a model that cannot name its tokens (fed token ids). */
export function vocabularyFor(model: TextModel, param: string): Vocabulary {
  if (!model.vocabulary) throw new InvalidRequestError(`'${param}' needs the model's tokenizer, and this model has none`, param, 'unsupported_parameter');
  return model.vocabulary;
}

// Text <-> token ids with the model's own tokenizer.json and chat template (@huggingface/jinja): byte-level BPE
// vocabularies through our compact tables (byte-level-bpe.ts, same ids, a fraction of the JS heap), any other
// through @huggingface/tokenizers; incremental decoding that never emits half a UTF-8 character.
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { InvalidRequestError } from '../common/errors';
import type { ChatMessage, ChatTemplateOptions, Vocabulary as TokenVocabulary } from './api';
import { byteLevelBpeOf } from './byte-level-bpe';
import { vocabularyOf } from './vocabulary';

export interface TokenizerFiles {
  json: unknown; // tokenizer.json
  config: Record<string, unknown>; // tokenizer_config.json
}

export interface TextCodec {
  encode(text: string): number[];
  encodeChat(messages: ChatMessage[], opts?: ChatTemplateOptions): number[];
  decode(ids: readonly number[]): string;
  /** An incremental decoder cheaper than decoding every id again (IncrementalDecoder's deltas); absent or null: none. */
  incremental?(): { push(id: number): string } | null;
  /** ids as bytes and raw strings (logprobs, grammars); absent: not known */
  readonly vocabulary?: Omit<TokenVocabulary, 'eosTokenIds'>;
}

/** What a codec needs of its tokenizer: ids without special tokens added, text without special tokens. */
interface Vocabulary {
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  incremental?(): { push(id: number): string } | null;
}

/** @huggingface/tokenizers as a Vocabulary: every tokenizer.json the compact tables do not reproduce. */
function libraryVocabulary(files: TokenizerFiles): Vocabulary {
  const tok = new Tokenizer(files.json as never, files.config as never);
  return {
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) => tok.decode([...ids], { skip_special_tokens: true }),
  };
}

/** The codec of a Hugging Face tokenizer (tokenizer.json, tokenizer_config.json) and chat template. */
export class HfTextCodec implements TextCodec {
  private readonly tok: Vocabulary;
  private readonly template?: Template;
  /** which implementation encodes: 'compact' (byte-level-bpe.ts) or 'library' (@huggingface/tokenizers) */
  readonly implementation: 'compact' | 'library';

  constructor(files: TokenizerFiles, chatTemplate: string | null, private readonly bos: { id: number | null; add: boolean }, opts: { compact?: boolean } = {}) {
    const compact = opts.compact === false ? null : byteLevelBpeOf(files.json as Record<string, unknown>, files.config);
    this.tok = compact ?? libraryVocabulary(files);
    this.implementation = compact ? 'compact' : 'library';
    if (chatTemplate) this.template = new Template(chatTemplate);
    this.specials = specialTokenStrings(files.config);
    this.vocabulary = vocabularyOf(files.json as Record<string, unknown>);
  }

  readonly vocabulary: Omit<TokenVocabulary, 'eosTokenIds'>;

  private readonly specials: Record<string, string>;

  encode(text: string): number[] {
    const ids = this.tok.encode(text);
    return this.bos.add && this.bos.id !== null && ids[0] !== this.bos.id ? [this.bos.id, ...ids] : ids;
  }

  encodeChat(messages: ChatMessage[], opts: ChatTemplateOptions = {}): number[] {
    if (!this.template) throw new Error('this model has no chat template: use /v1/completions');
    let text: string;
    try {
      // `tools` only when given: templates test `tools is defined` / `if tools` to choose their tool prompt
      const tools = opts.tools?.length ? { tools: opts.tools } : {};
      text = this.template.render({ messages: messages as unknown as Record<string, unknown>[], add_generation_prompt: true, ...tools, ...this.specials });
    } catch (e) {
      // templates refuse conversations they cannot render (raise_exception: roles that do not alternate, a
      // system message in the wrong place): the client's messages are at fault, so 400 naming them
      throw new InvalidRequestError(`The model's chat template cannot render these messages: ${(e as Error)?.message ?? e}`, 'messages', 'invalid_messages');
    }
    // the template writes BOS itself when the model wants one
    return this.tok.encode(text);
  }

  decode(ids: readonly number[]): string {
    return this.tok.decode(ids);
  }

  incremental(): { push(id: number): string } | null {
    return this.tok.incremental?.() ?? null;
  }
}

/** bos_token / eos_token / ... as strings for the template (tokenizer_config may store them as objects). */
function specialTokenStrings(config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = config[key];
    if (typeof v === 'string') out[key] = v;
    else if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') out[key] = (v as { content: string }).content;
  }
  return out;
}

/**
 * Turns a growing list of ids into final text deltas, holding back an incomplete UTF-8 character: the codec's own
 * incremental decoder when it has one (the new ids only), else the whole list decoded again for each id.
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  private emitted = 0;
  private readonly own: { push(id: number): string } | null;

  constructor(private readonly codec: Pick<TextCodec, 'decode' | 'incremental'>) {
    this.own = codec.incremental?.() ?? null;
  }

  push(id: number): string {
    if (this.own) return this.own.push(id);
    this.ids.push(id);
    const text = this.codec.decode(this.ids);
    if (text.endsWith('\uFFFD')) return ''; // wait for the rest of the character
    const delta = text.slice(this.emitted);
    this.emitted = text.length;
    return delta;
  }
}

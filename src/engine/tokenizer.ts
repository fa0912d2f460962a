// Text <-> token ids with the model's own tokenizer.json (@huggingface/tokenizers) and chat template
// (@huggingface/jinja); incremental decoding that never emits half a UTF-8 character.
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { InvalidRequestError } from '../common/errors';
import type { ChatMessage } from './api';

export interface TokenizerFiles {
  json: unknown; // tokenizer.json
  config: Record<string, unknown>; // tokenizer_config.json
}

export interface TextCodec {
  encode(text: string): number[];
  encodeChat(messages: ChatMessage[]): number[];
  decode(ids: readonly number[]): string;
}

export class HfTextCodec implements TextCodec {
  private readonly tok: Tokenizer;
  private readonly template?: Template;

  constructor(files: TokenizerFiles, chatTemplate: string | null, private readonly bos: { id: number | null; add: boolean }) {
    this.tok = new Tokenizer(files.json as never, files.config as never);
    if (chatTemplate) this.template = new Template(chatTemplate);
    this.specials = specialTokenStrings(files.config);
  }

  private readonly specials: Record<string, string>;

  encode(text: string): number[] {
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    return this.bos.add && this.bos.id !== null && ids[0] !== this.bos.id ? [this.bos.id, ...ids] : ids;
  }

  encodeChat(messages: ChatMessage[]): number[] {
    if (!this.template) throw new Error('this model has no chat template: use /v1/completions');
    let text: string;
    try {
      text = this.template.render({ messages, add_generation_prompt: true, ...this.specials });
    } catch (e) {
      // templates refuse conversations they cannot render (raise_exception: roles that do not alternate, a
      // system message in the wrong place): the client's messages are at fault, so 400 naming them
      throw new InvalidRequestError(`The model's chat template cannot render these messages: ${(e as Error)?.message ?? e}`, 'messages', 'invalid_messages');
    }
    // the template writes BOS itself when the model wants one
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    return this.tok.decode([...ids], { skip_special_tokens: true });
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

/** Turns a growing list of ids into final text deltas, holding back an incomplete UTF-8 character. */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  private emitted = 0;

  constructor(private readonly codec: Pick<TextCodec, 'decode'>) {}

  push(id: number): string {
    this.ids.push(id);
    const text = this.codec.decode(this.ids);
    if (text.endsWith('\uFFFD')) return ''; // wait for the rest of the character
    const delta = text.slice(this.emitted);
    this.emitted = text.length;
    return delta;
  }
}

// What a model folder says about text around the weights: tokenizer files (copied verbatim), chat template,
// BOS/EOS ids and sampling defaults, gathered from tokenizer_config.json, config.json and generation_config.json.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../../src/format/manifest';
import { readJsonIfPresent } from './checkpoint';

type Json = Record<string, unknown>;
type Generation = Manifest['generation'];

export interface TokenizerMeta {
  /** files to copy into the model, by object name */
  files: Map<string, Uint8Array>;
  tokenizer: Manifest['tokenizer'];
  chatTemplate: string | null;
  generation: Generation;
}

export const TOKENIZER_JSON = 'tokenizer.json';
export const TOKENIZER_CONFIG = 'tokenizer_config.json';

export async function readTokenizerMeta(inDir: string, config: Json, vocabSize: number, warn: (msg: string) => void): Promise<TokenizerMeta> {
  const files = new Map<string, Uint8Array>();
  const tokJsonBytes = await readIfPresent(join(inDir, TOKENIZER_JSON));
  const tokConfigBytes = await readIfPresent(join(inDir, TOKENIZER_CONFIG));
  const tokJson = tokJsonBytes ? (parse(tokJsonBytes, TOKENIZER_JSON) as Json) : undefined;
  const tokConfig = tokConfigBytes ? (parse(tokConfigBytes, TOKENIZER_CONFIG) as Json) : {};
  const genConfig = ((await readJsonIfPresent(join(inDir, 'generation_config.json'))) ?? {}) as Json;

  if (tokJsonBytes) {
    files.set(TOKENIZER_JSON, tokJsonBytes);
    if (!tokConfigBytes) warn(`${TOKENIZER_JSON} without ${TOKENIZER_CONFIG}: writing an empty one`);
    files.set(TOKENIZER_CONFIG, tokConfigBytes ?? new TextEncoder().encode('{}\n'));
  } else if (tokConfigBytes) {
    warn(`${TOKENIZER_CONFIG} without ${TOKENIZER_JSON}: the model gets no tokenizer`);
  }

  const lookup = (token: unknown): number | undefined => (tokJson ? tokenId(tokJson, tokenContent(token)) : undefined);
  const valid = (id: number | undefined, what: string): id is number => {
    if (id === undefined) return false;
    if (id < vocabSize) return true;
    warn(`${what} ${id} is outside the vocabulary (${vocabSize}); ignored`);
    return false;
  };

  const bos = [ids(genConfig.bos_token_id)[0], ids(config.bos_token_id)[0], lookup(tokConfig.bos_token)].find((id) => id !== undefined);
  // union: chat models often end turns with a token that only tokenizer_config or generation_config names
  const eos = [...ids(genConfig.eos_token_id), ...ids(config.eos_token_id), lookup(tokConfig.eos_token)];
  const eosTokenIds = [...new Set(eos.filter((id): id is number => valid(id, 'eos token id')))];

  const generation: Generation = {
    bosTokenId: valid(bos, 'bos token id') ? bos : null,
    eosTokenIds,
    addBos: addBos(tokConfig, tokJson),
    temperature: 0.7,
    topP: 1,
    maxTokens: 256,
  };
  if (genConfig.do_sample === false) generation.temperature = 0; // HF: greedy unless sampling is on
  else if (typeof genConfig.temperature === 'number') generation.temperature = genConfig.temperature;
  if (typeof genConfig.top_p === 'number' && genConfig.top_p > 0 && genConfig.top_p <= 1) generation.topP = genConfig.top_p;

  return {
    files,
    tokenizer: tokJsonBytes ? { json: TOKENIZER_JSON, config: TOKENIZER_CONFIG } : null,
    chatTemplate: await chatTemplate(inDir, tokConfig),
    generation,
  };
}

/** The template: tokenizer_config's chat_template (a string, or the `default` of a named list), else chat_template.jinja / .json. */
async function chatTemplate(inDir: string, tokConfig: Json): Promise<string | null> {
  const t = tokConfig.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as Array<{ name?: unknown; template?: unknown }>;
    const pick = named.find((x) => x.name === 'default') ?? named[0];
    if (typeof pick?.template === 'string') return pick.template;
  }
  const jinja = await readIfPresent(join(inDir, 'chat_template.jinja'));
  if (jinja) return new TextDecoder().decode(jinja);
  const json = (await readJsonIfPresent(join(inDir, 'chat_template.json'))) as Json | undefined;
  return typeof json?.chat_template === 'string' ? json.chat_template : null;
}

/** add_bos_token when set; otherwise whether the tokenizer's post-processor puts BOS first (Llama/Mixtral do). */
function addBos(tokConfig: Json, tokJson: Json | undefined): boolean {
  if (typeof tokConfig.add_bos_token === 'boolean') return tokConfig.add_bos_token;
  const single = ((tokJson?.post_processor as Json | null)?.single ?? []) as Array<Json>;
  return single.length > 0 && 'SpecialToken' in single[0] && tokenContent(tokConfig.bos_token) !== undefined &&
    (single[0].SpecialToken as Json).id === tokenContent(tokConfig.bos_token);
}

function ids(v: unknown): number[] {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
  return [];
}

// tokenizer_config writes special tokens as a string or as an AddedToken object { content, ... }
function tokenContent(token: unknown): string | undefined {
  if (typeof token === 'string') return token;
  if (typeof token === 'object' && token !== null && typeof (token as Json).content === 'string') return (token as Json).content as string;
  return undefined;
}

function tokenId(tokJson: Json, content: string | undefined): number | undefined {
  if (content === undefined) return undefined;
  const added = (tokJson.added_tokens ?? []) as Array<{ id: number; content: string }>;
  const hit = added.find((t) => t.content === content);
  if (hit) return hit.id;
  const vocab = (tokJson.model as Json | undefined)?.vocab;
  if (Array.isArray(vocab)) {
    const i = vocab.findIndex((v) => Array.isArray(v) && v[0] === content); // Unigram: [piece, score]
    return i >= 0 ? i : undefined;
  }
  if (typeof vocab !== 'object' || vocab === null || !Object.hasOwn(vocab, content)) return undefined;
  const id = (vocab as Record<string, unknown>)[content];
  return typeof id === 'number' ? id : undefined;
}

async function readIfPresent(path: string): Promise<Uint8Array | undefined> {
  try {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function parse(bytes: Uint8Array, name: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new Error(`${name} is not valid JSON (${(e as Error).message})`);
  }
}

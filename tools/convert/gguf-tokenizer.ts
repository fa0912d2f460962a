// tokenizer.ggml.* -> the tokenizer.json / tokenizer_config.json pair the engine loads with
// @huggingface/tokenizers, plus BOS/EOS and the chat template. Two vocabulary kinds: `gpt2` (byte-level BPE,
// with the split regex llama.cpp names in tokenizer.ggml.pre) and `llama` (SentencePiece BPE: merges rebuilt
// from the piece scores, byte fallback). Anything else leaves the model without a tokenizer, with a warning.
import { metaValue, type GgufHeader } from './gguf';
import { TOKENIZER_CONFIG, TOKENIZER_JSON, type TokenizerMeta } from './tokenizer-meta';

type Json = Record<string, unknown>;

// llama.cpp's token types (enum llama_token_type)
const CONTROL = 3;
const USER_DEFINED = 4;

// the split regex of each tokenizer.ggml.pre llama.cpp writes for the supported families (as their HF
// tokenizer.json files spell it)
const GPT2_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const SPLITS: Record<string, string[]> = {
  'gpt-2': [GPT2_SPLIT],
  olmo: [GPT2_SPLIT],
  refact: ['\\p{N}', GPT2_SPLIT],
  starcoder: ['\\p{N}', GPT2_SPLIT],
  qwen2: ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
  'llama-bpe': ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
};

export function tokenizerFromGguf(h: Pick<GgufHeader, 'metadata'>, vocabSize: number, warn: (msg: string) => void): TokenizerMeta {
  const meta = (k: string) => metaValue(h, k);
  const num = (k: string) => (typeof meta(k) === 'number' ? (meta(k) as number) : undefined);
  const bos = num('tokenizer.ggml.bos_token_id');
  const eosIds = [num('tokenizer.ggml.eos_token_id'), num('tokenizer.ggml.eot_token_id'), num('tokenizer.ggml.eom_token_id')]
    .filter((x): x is number => x !== undefined && x < vocabSize);
  const addBos = meta('tokenizer.ggml.add_bos_token') === true;
  const chatTemplate = typeof meta('tokenizer.chat_template') === 'string' ? (meta('tokenizer.chat_template') as string) : null;
  const generation = { bosTokenId: bos !== undefined && bos < vocabSize ? bos : null, eosTokenIds: [...new Set(eosIds)], addBos, temperature: 0.7, topP: 1, maxTokens: 256 };
  const none = (why: string): TokenizerMeta => {
    warn(`${why}: the model is written without a tokenizer (token ids only)`);
    return { files: new Map(), tokenizer: null, chatTemplate, generation };
  };

  const kind = meta('tokenizer.ggml.model');
  const tokens = meta('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) return none('tokenizer.ggml.tokens is missing');
  const types = (meta('tokenizer.ggml.token_type') as number[] | undefined) ?? [];
  const added = tokens.flatMap((content, id) =>
    types[id] === CONTROL || types[id] === USER_DEFINED
      ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: types[id] === CONTROL }]
      : [],
  );
  const vocab = Object.fromEntries(tokens.map((t, i) => [t as string, i]));
  const bosText = bos !== undefined ? (tokens[bos] as string | undefined) : undefined;
  const postProcessor = addBos && bosText !== undefined
    ? { type: 'TemplateProcessing', single: [{ SpecialToken: { id: bosText, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [{ SpecialToken: { id: bosText, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }], special_tokens: { [bosText]: { id: bosText, ids: [bos], tokens: [bosText] } } }
    : null;

  let json: Json;
  if (kind === 'gpt2') {
    const pre = String(meta('tokenizer.ggml.pre') ?? 'gpt-2');
    const splits = SPLITS[pre === 'default' ? 'gpt-2' : pre];
    if (!splits) return none(`tokenizer.ggml.pre ${JSON.stringify(pre)} is not one this converter knows (${Object.keys(SPLITS).join(', ')})`);
    const merges = meta('tokenizer.ggml.merges');
    if (!Array.isArray(merges)) return none('a gpt2 vocabulary without tokenizer.ggml.merges');
    json = {
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          ...splits.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: postProcessor,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges },
    };
  } else if (kind === 'llama') {
    const scores = meta('tokenizer.ggml.scores');
    if (!Array.isArray(scores) || scores.length !== tokens.length) return none('a llama (SentencePiece) vocabulary without one score per token');
    const unk = num('tokenizer.ggml.unknown_token_id');
    // llama.cpp puts a space before the text unless the file says not to (SentencePiece's add_dummy_prefix)
    const prefix = meta('tokenizer.ggml.add_space_prefix') !== false;
    json = {
      normalizer: { type: 'Sequence', normalizers: [...(prefix ? [{ type: 'Prepend', prepend: '\u2581' }] : []), { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
      pre_tokenizer: null,
      post_processor: postProcessor,
      decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, ...(prefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : [])] },
      model: {
        type: 'BPE', dropout: null, unk_token: unk !== undefined ? tokens[unk] : null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: sentencePieceMerges(tokens as string[], scores as number[], types),
      },
    };
  } else {
    return none(`tokenizer.ggml.model ${JSON.stringify(kind)} is not supported (gpt2 or llama)`);
  }
  const tokenizerJson = { version: '1.0', truncation: null, padding: null, added_tokens: added, ...json };
  const text = (id: number | undefined) => (id !== undefined ? (tokens[id] as string | undefined) ?? null : null);
  const config = {
    bos_token: text(bos),
    eos_token: text(num('tokenizer.ggml.eos_token_id')),
    unk_token: text(num('tokenizer.ggml.unknown_token_id')),
    add_bos_token: addBos,
    add_eos_token: false,
    ...(chatTemplate !== null ? { chat_template: chatTemplate } : {}),
  };
  const encode = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, null, 1) + '\n');
  return {
    files: new Map([[TOKENIZER_JSON, encode(tokenizerJson)], [TOKENIZER_CONFIG, encode(config)]]),
    tokenizer: { json: TOKENIZER_JSON, config: TOKENIZER_CONFIG },
    chatTemplate,
    generation,
  };
}

/**
 * SentencePiece BPE as merges: every split of a normal piece into two pieces of the vocabulary is a merge,
 * ranked by the merged piece's score (SentencePiece joins the highest-scoring pair first), ties by id.
 */
export function sentencePieceMerges(tokens: string[], scores: number[], types: number[]): string[][] {
  const id = new Map(tokens.map((t, i) => [t, i]));
  const merges: { a: string; b: string; score: number; id: number }[] = [];
  tokens.forEach((t, i) => {
    if ((types[i] ?? 1) !== 1) return; // only normal pieces are reachable by merging
    const chars = [...t];
    for (let k = 1; k < chars.length; k++) {
      const a = chars.slice(0, k).join('');
      const b = chars.slice(k).join('');
      const ia = id.get(a);
      const ib = id.get(b);
      if (ia !== undefined && ib !== undefined && (types[ia] ?? 1) === 1 && (types[ib] ?? 1) === 1) merges.push({ a, b, score: scores[i], id: i });
    }
  });
  merges.sort((x, y) => y.score - x.score || x.id - y.id);
  return merges.map((m) => [m.a, m.b]);
}

// A granite-sized byte-level BPE tokenizer (exactly vocab_size entries) for the granite-shaped random model:
// granite's own tokenizer cannot be downloaded here, and a 49k-entry BPE is what sets the Worker's tokenizer memory.
// Merges are learned by pair counting over seeded English-like words (seeded-words.ts): the seed alone gives the file.
import { Tokenizer } from '@huggingface/tokenizers';
import { seededRandom } from '../src/engine/sampler';
import { bytesToUnicode } from './make-tiny-default';
import { seededWordCounts } from './seeded-words';

/** Granite's special tokens: <|end_of_text|> is id 0 (bos = eos = pad), the role markers sit after the BPE entries. */
export const END_OF_TEXT = '<|end_of_text|>';
const LEADING_SPECIALS = [END_OF_TEXT, '<fim_prefix>', '<fim_middle>', '<fim_suffix>', '<fim_pad>', '<filename>'];
const TRAILING_SPECIALS = ['<|start_of_role|>', '<|end_of_role|>', '<|tool_call|>'];

// granite's turn format: <|start_of_role|>user<|end_of_role|>text<|end_of_text|>
const CHAT_TEMPLATE =
  "{%- for message in messages %}{{- '<|start_of_role|>' + message['role'] + '<|end_of_role|>' + message['content'] + '<|end_of_text|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|start_of_role|>assistant<|end_of_role|>' }}{%- endif %}";

export interface GraniteTokenizerFiles {
  json: Record<string, unknown>;
  config: Record<string, unknown>;
  /** generation_config.json as granite ships it: greedy by default */
  generation: Record<string, unknown>;
  /** merges learned from the seeded words, and those filled in at random if the words ran out of pairs */
  learned: number;
  filled: number;
}

// seeded word draws to learn merges from: enough distinct words that pair counting never runs out before 49k merges
const WORD_TYPES = 200_000;

export function graniteTokenizer(vocabSize: number, seed: number): GraniteTokenizerFiles {
  const byteChars = bytesToUnicode();
  const tokens: string[] = [...LEADING_SPECIALS, ...byteChars];
  const nMerges = vocabSize - tokens.length - TRAILING_SPECIALS.length;
  if (nMerges < 0) throw new Error(`vocab_size ${vocabSize} is smaller than the byte and special tokens`);
  const merges = learnMerges(seededWordCounts(seed, WORD_TYPES), tokens, byteChars, nMerges);
  const learned = merges.length;
  fillMerges(tokens, merges, byteChars, nMerges - learned, seed);
  tokens.push(...TRAILING_SPECIALS);
  if (tokens.length !== vocabSize) throw new Error(`internal: ${tokens.length} tokens, expected ${vocabSize}`);

  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const specials = [...LEADING_SPECIALS, ...TRAILING_SPECIALS];
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
  const config = {
    add_bos_token: false, // granite writes no BOS: prompts start with their first token
    add_prefix_space: false,
    bos_token: END_OF_TEXT,
    eos_token: END_OF_TEXT,
    pad_token: END_OF_TEXT,
    unk_token: END_OF_TEXT,
    clean_up_tokenization_spaces: false, // granite's is true; false keeps decode(encode(text)) == text (" 'mong")
    model_max_length: 9223372036854775807,
    tokenizer_class: 'GPT2Tokenizer',
    additional_special_tokens: TRAILING_SPECIALS,
    chat_template: CHAT_TEMPLATE,
  };
  const generation = { bos_token_id: 0, eos_token_id: 0, pad_token_id: 0 };
  return { json, config, generation, learned, filled: nMerges - learned };
}

/**
 * BPE training by pair counting: repeatedly merge the most frequent adjacent pair (ties: lowest ids) over the
 * pre-tokenized words and their counts, until `max` merges or no pair is left. Appends each merged token to `tokens`.
 */
function learnMerges(wordCounts: Map<string, number>, tokens: string[], byteChars: string[], max: number): string[] {
  const idOf = new Map(tokens.map((t, i) => [t, i]));
  const enc = new TextEncoder();
  const freq = new Map<string, number>();
  for (const [word, count] of wordCounts) {
    let w = '';
    for (const b of enc.encode(word)) w += byteChars[b];
    freq.set(w, (freq.get(w) ?? 0) + count);
  }
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of [...freq].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    words.push([...w].map((ch) => idOf.get(ch)!));
    counts.push(c);
  }

  const key = (a: number, b: number) => a * 65536 + b; // ids < 65536
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const heap = new PairHeap();
  const bump = (k: number, by: number, w: number): void => {
    const c = (pairCount.get(k) ?? 0) + by;
    pairCount.set(k, c);
    if (by > 0) {
      let s = pairWords.get(k);
      if (!s) pairWords.set(k, (s = new Set()));
      s.add(w);
    }
  };
  const forPairs = (w: number, sign: number, touched: Set<number>): void => {
    const syms = words[w];
    for (let i = 0; i + 1 < syms.length; i++) {
      const k = key(syms[i], syms[i + 1]);
      bump(k, sign * counts[w], w);
      touched.add(k);
    }
  };
  const all = new Set<number>();
  for (let w = 0; w < words.length; w++) forPairs(w, 1, all);
  for (const k of all) heap.push(pairCount.get(k)!, k);

  const merges: string[] = [];
  const taken = new Set(tokens);
  while (merges.length < max) {
    const top = heap.pop();
    if (!top) break;
    const [count, k] = top;
    if (pairCount.get(k) !== count || count <= 0) continue; // stale entry
    const a = Math.floor(k / 65536);
    const b = k % 65536;
    const merged = tokens[a] + tokens[b];
    pairCount.set(k, 0);
    if (taken.has(merged)) continue; // the same string by another path: a token must be unique
    const id = tokens.length;
    tokens.push(merged);
    taken.add(merged);
    merges.push(`${tokens[a]} ${tokens[b]}`);
    const touched = new Set<number>();
    for (const w of pairWords.get(k) ?? []) {
      const syms = words[w];
      let found = false;
      for (let i = 0; i + 1 < syms.length; i++) if (syms[i] === a && syms[i + 1] === b) found = true;
      if (!found) continue;
      forPairs(w, -1, touched);
      const next: number[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          next.push(id);
          i++;
        } else next.push(syms[i]);
      }
      words[w] = next;
      forPairs(w, 1, touched);
    }
    pairWords.delete(k);
    pairCount.set(k, 0);
    for (const t of touched) if (t !== k && pairCount.get(t)! > 0) heap.push(pairCount.get(t)!, t);
  }
  return merges;
}

/** If the words run out of pairs: seeded merges of a short existing token and a letter, each new and unique. */
function fillMerges(tokens: string[], merges: string[], byteChars: string[], n: number, seed: number): void {
  const rand = seededRandom(seed);
  const taken = new Set(tokens);
  const letters = [...'abcdefghijklmnopqrstuvwxyz'].map((c) => byteChars[c.charCodeAt(0)]);
  const first = LEADING_SPECIALS.length; // no special token takes part in a merge
  for (let added = 0; added < n; ) {
    const a = tokens[first + Math.floor(rand() * (tokens.length - first))];
    const b = letters[Math.floor(rand() * letters.length)];
    if (a.length > 8 || taken.has(a + b)) continue;
    tokens.push(a + b);
    taken.add(a + b);
    merges.push(`${a} ${b}`);
    added++;
  }
}

/** Max-heap of (count, pair key); ties pop the lowest key first, so training is deterministic. */
class PairHeap {
  private readonly c: number[] = [];
  private readonly k: number[] = [];
  private above(i: number, j: number): boolean {
    return this.c[i] > this.c[j] || (this.c[i] === this.c[j] && this.k[i] < this.k[j]);
  }
  private swap(i: number, j: number): void {
    [this.c[i], this.c[j]] = [this.c[j], this.c[i]];
    [this.k[i], this.k[j]] = [this.k[j], this.k[i]];
  }
  push(count: number, key: number): void {
    this.c.push(count);
    this.k.push(key);
    for (let i = this.c.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] | undefined {
    if (this.c.length === 0) return undefined;
    const top: [number, number] = [this.c[0], this.k[0]];
    const lc = this.c.pop()!;
    const lk = this.k.pop()!;
    if (this.c.length > 0) {
      this.c[0] = lc;
      this.k[0] = lk;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.c.length && this.above(l, m)) m = l;
        if (r < this.c.length && this.above(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/** Loads the files in @huggingface/tokenizers (the engine's library) and checks decode(encode(text)) == text. */
export function checkTokenizer(files: GraniteTokenizerFiles, vocabSize: number, samples: string[]): void {
  const tok = new Tokenizer(files.json as never, files.config as never);
  const size = tok.get_vocab(true).size;
  if (size !== vocabSize) throw new Error(`tokenizer has ${size} entries, expected ${vocabSize}`);
  for (const text of samples) {
    const back = tok.decode(tok.encode(text, { add_special_tokens: false }).ids);
    if (back !== text) throw new Error(`tokenizer round trip failed: ${JSON.stringify(text.slice(0, 80))}`);
  }
}

// The byte-level BPE tokenizers of our models (GPT-2 style: granite, the default model) over typed arrays, so that
// a 49k-entry vocabulary costs ~1.5 MiB of JS heap instead of the ~11 MiB of @huggingface/tokenizers' objects.
// It reproduces that library's ids and text exactly for the configurations byteLevelBpeOf() accepts (identity is
// tested on a corpus in test/unit/engine/byte-level-bpe.test.ts); tokenizer.ts falls back to the library otherwise.

type Json = Record<string, unknown>;

interface AddedTokenJson {
  id: number;
  content: string;
  lstrip?: boolean;
  rstrip?: boolean;
  special?: boolean;
}

// GPT-2's pre-tokenizer split, as the ByteLevel pre-tokenizer applies it with use_regex
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's byte <-> printable character table: each byte is one character of a byte-level token string. */
function byteChars(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(printable(b) ? b : 256 + shifted++));
  return out;
}

const isNullish = (v: unknown) => v === null || v === undefined;

/**
 * The compact tokenizer of a tokenizer.json + tokenizer_config.json, or null when they use a feature it does not
 * reproduce (a normalizer, another pre-tokenizer or decoder, BPE dropout or byte fallback, a merge or byte that
 * is not in the vocabulary ...): the caller then uses @huggingface/tokenizers.
 */
export function byteLevelBpeOf(json: Json, config: Json): ByteLevelBpe | null {
  const model = json.model as Json | undefined;
  const pre = json.pre_tokenizer as Json | null | undefined;
  const dec = json.decoder as Json | null | undefined;
  const post = json.post_processor as Json | null | undefined;
  if (!model || model.type !== 'BPE' || !isNullish(json.normalizer)) return null;
  if (!pre || pre.type !== 'ByteLevel' || !dec || dec.type !== 'ByteLevel') return null;
  if (!isNullish(model.dropout) || !isNullish(model.continuing_subword_prefix) || !isNullish(model.continuing_subword_suffix)) return null;
  if (!isNullish(model.end_of_word_suffix) || model.byte_fallback === true || model.ignore_merges === true) return null;
  if (config.remove_space === true || config.do_lowercase_and_remove_accent === true) return null;
  // with add_special_tokens off (the only way we encode), these post-processors pass the tokens through
  if (post && post.type !== 'ByteLevel') {
    const single = post.type === 'TemplateProcessing' ? (post.single as Json[] | undefined) : undefined;
    const seqs = single?.filter((x) => 'Sequence' in x) ?? [];
    if (seqs.length !== 1 || (seqs[0].Sequence as Json).id !== 'A') return null;
  }
  const vocab = model.vocab as Record<string, number> | undefined;
  const merges = model.merges as (string | string[])[] | undefined;
  if (!vocab || typeof vocab !== 'object' || !Array.isArray(merges) || !Array.isArray(json.added_tokens)) return null;
  const added = (json.added_tokens as AddedTokenJson[]).filter((t) => typeof t.content === 'string' && Number.isInteger(t.id));
  if (added.length !== json.added_tokens.length) return null;
  return ByteLevelBpe.build(vocab, merges, added, {
    unk: typeof model.unk_token === 'string' ? model.unk_token : null,
    addPrefixSpace: pre.add_prefix_space === true,
    useRegex: pre.use_regex !== false,
    cleanUp: (config.clean_up_tokenization_spaces ?? true) !== false,
    extraSpecials: Array.isArray(config.additional_special_tokens) ? config.additional_special_tokens.filter((s): s is string => typeof s === 'string') : [],
  });
}

interface Options {
  unk: string | null;
  addPrefixSpace: boolean;
  useRegex: boolean;
  /** clean_up_tokenization_spaces: decode() joins " ." and the like as the library does */
  cleanUp: boolean;
  /** tokenizer_config's additional_special_tokens: skipped by decode() like special added tokens */
  extraSpecials: string[];
}

/** How decode() treats an id: its token's bytes, an added token's literal text, or the unknown token's (no token has the id). */
const enum Kind {
  Bytes = 0,
  Literal = 1,
  Hole = 255,
}

export class ByteLevelBpe {
  private readonly utf8 = new TextEncoder();
  private readonly text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  private constructor(
    private readonly opts: Options,
    /** symbol id of each byte (the id of its one-character token) */
    private readonly byteId: Int32Array,
    /** merges by left symbol: mergeStart[l]..mergeStart[l+1] index mergeRight/mergeRank/mergeInto, sorted by right */
    private readonly mergeStart: Int32Array,
    private readonly mergeRight: Int32Array,
    private readonly mergeRank: Int32Array,
    private readonly mergeInto: Int32Array,
    /** decode: the bytes of token id i are tokenBytes[tokenStart[i]..tokenStart[i+1]] */
    private readonly tokenStart: Int32Array,
    private readonly tokenBytes: Uint8Array,
    /** decode: Kind per id; special: 1 where decode skips the id (special added tokens, additional_special_tokens) */
    private readonly kind: Uint8Array,
    private readonly special: Uint8Array,
    /** decode: the literal text of added-token ids (few), and what an unknown id decodes to */
    private readonly literal: Map<number, string>,
    private readonly unknown: { kind: Kind; special: boolean; bytes: Uint8Array; literal: string } | null,
    /** encode: added tokens by first character, longest first; their ids (the last one listed wins) */
    private readonly addedByFirst: Map<string, string[]>,
    private readonly addedId: Map<string, AddedTokenJson>,
  ) {}

  /**
   * Built with as little garbage as it can: the Worker builds it once per load, and what it allocates on the way
   * stays in V8's old space until a major collection (Map and entry arrays per vocabulary entry did ~40 MB).
   */
  static build(vocab: Record<string, number>, merges: (string | string[])[], added: AddedTokenJson[], opts: Options): ByteLevelBpe | null {
    // string -> id as the library resolves it: the added tokens (the last one wins), then the vocabulary
    const addedId = new Map<string, AddedTokenJson>();
    for (const t of added) addedId.set(t.content, t);
    let size = 0;
    for (const key in vocab) {
      const id = vocab[key];
      if (!Number.isInteger(id) || id < 0) return null;
      if (id >= size) size = id + 1;
    }
    for (const t of added) if (t.id < 0) return null;
    for (const t of added) if (t.id >= size) size = t.id + 1;
    // id -> string as the library decodes it: the vocabulary in its key order (the last key wins), then the added tokens
    const strOf: (string | undefined)[] = new Array(size);
    for (const key in vocab) strOf[vocab[key]] = key;
    for (const t of added) strOf[t.id] = t.content;

    // encode works on ids: every string a merge can form must have exactly one id, and that id must name it back
    const symbol = (s: string): number => {
      const id = addedId.get(s)?.id ?? (Object.hasOwn(vocab, s) ? vocab[s] : undefined);
      return id !== undefined && strOf[id] === s ? id : -1;
    };
    const chars = byteChars();
    const byteId = new Int32Array(256);
    for (let b = 0; b < 256; b++) if ((byteId[b] = symbol(chars[b])) < 0) return null;
    // (left, right, merged) per usable merge, in listing order: the index is the rank
    const triples = new Int32Array(3 * merges.length);
    let usable = 0;
    // the library reads every merge in the form of the first: ["a", "b"], or "a b" cut at its first two spaces
    const pairs = Array.isArray(merges[0]);
    for (const m of merges) {
      let a: string, b: string;
      if (Array.isArray(m) !== pairs) {
        if (!pairs) return null; // the library would fail on it
        continue; // never matches a pair
      }
      if (typeof m === 'string') {
        const cut = m.indexOf(' ');
        if (cut < 0) continue; // never applies
        const end = m.indexOf(' ', cut + 1);
        [a, b] = [m.slice(0, cut), m.slice(cut + 1, end < 0 ? m.length : end)];
      } else {
        if (m.length !== 2 || typeof m[0] !== 'string' || typeof m[1] !== 'string') continue; // never applies
        [a, b] = m;
      }
      const [l, r, into] = [symbol(a), symbol(b), symbol(a + b)];
      if (l < 0 || r < 0 || into < 0) {
        // a merge whose parts never occur changes nothing; one that forms a string without an id is beyond us
        if (l >= 0 && r >= 0) return null;
        continue;
      }
      [triples[3 * usable], triples[3 * usable + 1], triples[3 * usable + 2]] = [l, r, into];
      usable++;
    }
    // sorted by (left, right) for mergeOf's binary search; of a pair listed twice the last listing counts, as in the library
    const order = new Int32Array(usable);
    for (let i = 0; i < usable; i++) order[i] = i;
    order.sort((x, y) => triples[3 * x] - triples[3 * y] || triples[3 * x + 1] - triples[3 * y + 1] || x - y);
    let kept = 0;
    for (let i = 0; i < usable; i++) {
      const [x, y] = [order[i], order[i + 1]];
      if (i + 1 < usable && triples[3 * x] === triples[3 * y] && triples[3 * x + 1] === triples[3 * y + 1]) continue;
      order[kept++] = x;
    }
    const mergeStart = new Int32Array(size + 1);
    const mergeRight = new Int32Array(kept);
    const mergeRank = new Int32Array(kept);
    const mergeInto = new Int32Array(kept);
    for (let i = 0; i < kept; i++) {
      const t = order[i];
      mergeStart[triples[3 * t] + 1]++;
      mergeRight[i] = triples[3 * t + 1];
      mergeRank[i] = t;
      mergeInto[i] = triples[3 * t + 2];
    }
    for (let i = 0; i < size; i++) mergeStart[i + 1] += mergeStart[i];

    // decode tables: each token's bytes (a character outside the byte table gives 0, as in the library)
    const specials = new Set([...added.filter((t) => t.special === true).map((t) => t.content), ...opts.extraSpecials]);
    const byteOf = new Int16Array(512).fill(-1);
    chars.forEach((c, b) => (byteOf[c.charCodeAt(0)] = b));
    const kind = new Uint8Array(size);
    const special = new Uint8Array(size);
    const literal = new Map<number, string>();
    const tokenStart = new Int32Array(size + 1);
    let room = 0;
    for (const s of strOf) room += s?.length ?? 0;
    let bytes = new Uint8Array(room);
    let len = 0;
    /** the bytes of token string `s` written at `at` in `out`; returns the end */
    const putBytes = (s: string, out: Uint8Array, at: number): number => {
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i);
        const lo = s.charCodeAt(i + 1);
        if (c >= 0xd800 && c <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff) [c, i] = [0x10000, i + 1]; // one character
        out[at++] = c < byteOf.length && byteOf[c] >= 0 ? byteOf[c] : 0;
      }
      return at;
    };
    for (let id = 0; id < size; id++) {
      const s = strOf[id];
      if (s === undefined) kind[id] = Kind.Hole; // decodes as the unknown token
      else if (addedId.has(s)) {
        kind[id] = Kind.Literal;
        literal.set(id, s);
      } else len = putBytes(s, bytes, len);
      if (s !== undefined && specials.has(s)) special[id] = 1;
      tokenStart[id + 1] = len;
    }
    if (len < bytes.length) bytes = bytes.slice(0, len);
    const unk = opts.unk;
    let unknown: ByteLevelBpe['unknown'] = null;
    if (unk !== null) {
      const own = new Uint8Array(unk.length);
      unknown = { kind: addedId.has(unk) ? Kind.Literal : Kind.Bytes, special: specials.has(unk), bytes: own.subarray(0, putBytes(unk, own, 0)), literal: unk };
    }

    const addedByFirst = new Map<string, string[]>();
    for (const t of added) {
      if (t.content === '') continue; // the library never matches an empty token
      const list = addedByFirst.get(t.content[0]) ?? [];
      if (!list.includes(t.content)) list.push(t.content);
      addedByFirst.set(t.content[0], list);
    }
    for (const list of addedByFirst.values()) list.sort((a, b) => b.length - a.length);
    return new ByteLevelBpe(opts, byteId, mergeStart, mergeRight, mergeRank, mergeInto, tokenStart, bytes, kind, special, literal, unknown, addedByFirst, addedId);
  }

  /** Token ids of `text`, without special tokens around it (add_special_tokens: false). */
  encode(text: string): number[] {
    const sections = this.splitAdded(text);
    const ids: number[] = [];
    for (const section of sections) {
      if (section.length === 0) continue;
      const token = this.addedId.get(section);
      if (token) {
        ids.push(token.id);
        continue;
      }
      const piece = this.opts.addPrefixSpace && !section.startsWith(' ') ? ' ' + section : section;
      if (!this.opts.useRegex) this.bpe(this.utf8.encode(piece), ids);
      else for (const m of piece.matchAll(GPT2_SPLIT)) this.bpe(this.utf8.encode(m[0]), ids);
    }
    return ids;
  }

  /** `text` cut around the added tokens (leftmost, then longest match), with their lstrip / rstrip applied. */
  private splitAdded(text: string): string[] {
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < text.length; ) {
      const match = this.addedByFirst.get(text[i])?.find((c) => text.startsWith(c, i));
      if (!match) {
        i++;
        continue;
      }
      if (i > start) out.push(text.slice(start, i));
      out.push(match);
      i += match.length;
      start = i;
    }
    if (start < text.length) out.push(text.slice(start));
    for (let i = 0; i < out.length; i++) {
      const t = this.addedId.get(out[i]);
      if (!t) continue;
      if (t.lstrip && i > 0) out[i - 1] = out[i - 1].trimEnd();
      if (t.rstrip && i < out.length - 1) out[i + 1] = out[i + 1].trimStart();
    }
    return out;
  }

  /** The merge of symbols l and r: its index in the merge arrays, or -1. */
  private mergeOf(l: number, r: number): number {
    let lo = this.mergeStart[l];
    let hi = this.mergeStart[l + 1] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.mergeRight[mid];
      if (v === r) return mid;
      if (v < r) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * BPE over one pre-token's bytes, appending its ids: repeatedly merge the adjacent pair of lowest rank (the
   * leftmost among equals), with a heap so that a long run of one character costs n log n, not n^2.
   */
  private bpe(bytes: Uint8Array, out: number[]): void {
    const n = bytes.length;
    if (n === 0) return;
    if (n === 1) {
      out.push(this.byteId[bytes[0]]);
      return;
    }
    const sym = new Int32Array(n);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      sym[i] = this.byteId[bytes[i]];
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    // heap entries: key rank * n + left position; the pair's symbols at push time, to drop stale entries
    const cap = 3 * n;
    const key = new Float64Array(cap);
    const left = new Int32Array(cap);
    const symL = new Int32Array(cap);
    const symR = new Int32Array(cap);
    const into = new Int32Array(cap);
    let size = 0;
    const swap = (a: number, b: number) => {
      [key[a], key[b]] = [key[b], key[a]];
      [left[a], left[b]] = [left[b], left[a]];
      [symL[a], symL[b]] = [symL[b], symL[a]];
      [symR[a], symR[b]] = [symR[b], symR[a]];
      [into[a], into[b]] = [into[b], into[a]];
    };
    const push = (i: number) => {
      const j = next[i];
      if (j < 0) return;
      const m = this.mergeOf(sym[i], sym[j]);
      if (m < 0) return;
      let k = size++;
      key[k] = this.mergeRank[m] * n + i;
      left[k] = i;
      symL[k] = sym[i];
      symR[k] = sym[j];
      into[k] = this.mergeInto[m];
      while (k > 0) {
        const p = (k - 1) >> 1;
        if (key[p] <= key[k]) break;
        swap(p, k);
        k = p;
      }
    };
    const pop = () => {
      swap(0, --size);
      for (let k = 0; ; ) {
        const a = 2 * k + 1;
        const b = a + 1;
        let m = k;
        if (a < size && key[a] < key[m]) m = a;
        if (b < size && key[b] < key[m]) m = b;
        if (m === k) break;
        swap(m, k);
        k = m;
      }
      return size;
    };
    for (let i = 0; i < n - 1; i++) push(i);
    while (size > 0) {
      const e = pop();
      const i = left[e];
      const j = next[i];
      // stale: i was merged into its left neighbour, or either side changed since the entry was pushed
      if (sym[i] !== symL[e] || j < 0 || sym[j] !== symR[e]) continue;
      sym[i] = into[e];
      sym[j] = -1;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      if (prev[i] >= 0) push(prev[i]);
      push(i);
    }
    for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
  }

  /** Text of `ids` as the library's decode with skip_special_tokens (and its clean-up when configured). */
  decode(ids: readonly number[]): string {
    if (ids.length === 0 || !Number.isInteger(ids[0])) throw new Error('token_ids must be a non-empty array of integers.');
    const s = this.stream();
    let text = '';
    for (const id of ids) text += s.take(id);
    text += s.flush();
    return this.opts.cleanUp ? cleanUpSpaces(text) : text;
  }

  /**
   * An incremental decoder that never emits half a UTF-8 character: the same deltas as decoding the whole list
   * each time and emitting what follows the text already emitted unless it ends in U+FFFD, at the cost of the
   * new tokens only. Null when decode() cleans up spaces (a later token can change text already emitted).
   */
  incremental(): { push(id: number): string } | null {
    if (this.opts.cleanUp) return null;
    const s = this.stream();
    let held = '';
    return {
      push: (id) => {
        held += s.take(id);
        // the text so far, as a whole decode would end it (incomplete bytes as U+FFFD), without ending the run
        const text = held + s.peek();
        if (text.endsWith('\uFFFD')) return '';
        s.clear();
        held = '';
        return text;
      },
    };
  }

  /**
   * Decoding state: byte runs between literal tokens. take() returns text that is final (a run ended by a
   * literal, and the literal); the current run's bytes wait for flush() / peek().
   */
  private stream() {
    let run = new Uint8Array(64);
    let len = 0;
    const append = (bytes: Uint8Array) => {
      if (len + bytes.length > run.length) {
        const grown = new Uint8Array(Math.max(run.length * 2, len + bytes.length));
        grown.set(run.subarray(0, len));
        run = grown;
      }
      run.set(bytes, len);
      len += bytes.length;
    };
    const flush = () => {
      const t = len > 0 ? this.text.decode(run.subarray(0, len)) : '';
      len = 0;
      return t;
    };
    return {
      take: (id: number): string => {
        const known = id >= 0 && id < this.kind.length && this.kind[id] !== Kind.Hole;
        if (!known) {
          const u = this.unknown;
          if (!u || u.special) return '';
          if (u.kind === Kind.Literal) return flush() + u.literal;
          append(u.bytes);
          return '';
        }
        if (this.special[id]) return '';
        if (this.kind[id] === Kind.Literal) return flush() + this.literal.get(id)!;
        append(this.tokenBytes.subarray(this.tokenStart[id], this.tokenStart[id + 1]));
        return '';
      },
      flush,
      peek: () => (len > 0 ? this.text.decode(run.subarray(0, len)) : ''),
      clear: () => void (len = 0),
    };
  }
}

/** clean_up_tokenization_spaces: the spaces English tokenizers put before punctuation and contractions, removed. */
function cleanUpSpaces(text: string): string {
  const pairs: [string, string][] = [[' .', '.'], [' ?', '?'], [' !', '!'], [' ,', ','], [" ' ", "'"], [" n't", "n't"], [" 'm", "'m"], [" 's", "'s"], [" 've", "'ve"], [" 're", "'re"]];
  for (const [from, to] of pairs) text = text.replaceAll(from, to);
  return text;
}

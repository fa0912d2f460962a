// The compact byte-level BPE tokenizer (src/engine/byte-level-bpe.ts) gives exactly the ids and text of
// @huggingface/tokenizers, which it replaces in the Worker: on the default model's and a granite-sized vocabulary,
// on the tokenizer.json options it claims to reproduce, through the incremental decoder; and the codec falls back
// to the library for a tokenizer it does not reproduce.
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { byteLevelBpeOf, type ByteLevelBpe } from '../../../src/engine/byte-level-bpe';
import { seededRandom } from '../../../src/engine/sampler';
import { HfTextCodec, IncrementalDecoder } from '../../../src/engine/tokenizer';
import { DEFAULT_SEED } from '../../../models/make-granite-shaped';
import { graniteTokenizer } from '../../../models/granite-tokenizer';

type Json = Record<string, unknown>;
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
const DEFAULT_JSON = JSON.parse(readFileSync('models/default/tokenizer.json', 'utf8')) as Json;
const DEFAULT_CONFIG = JSON.parse(readFileSync('models/default/tokenizer_config.json', 'utf8')) as Json;

// text this test owns: prose, code, numbers, whitespace runs, unicode beyond the BMP, a lone surrogate, contractions
const TEXTS = [
  'The worker keeps the trunk of the model and a few hot experts in its own memory; the rest is far away.',
  "It's what they'll say: we've done it, I'm sure, you're right, he'd know. Don't stop!",
  'def route(scores, k=2):\n    top = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]\n\treturn top\r\n',
  'Order 4711 shipped on 2026-12-03 at 09:45; total 1,234.50 EUR (incl. 19% VAT).   \n\n\n  trailing   ',
  'naïve café, Straße, 日本語のテキスト, Ελληνικά, emoji 🙂🚀👩‍👩‍👧 and a combining e\u0301 and \u00a0nbsp\u2028',
  'a lone surrogate \ud800 here, and \ufeffa BOM, and U+FFFD \ufffd itself',
  '-'.repeat(3000) + ' ' + 'aaaa'.repeat(500) + ' ' + ' '.repeat(700) + 'x',
  '',
  ' ',
];

/** Seeded text: words, numbers, punctuation and the tokenizer's special tokens in between. */
function seededText(seed: number, specials: string[], length: number): string {
  const r = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const words = TEXTS.flatMap((t) => t.split(/(\s+)/)).filter((w) => w.length < 40);
  let out = '';
  while (out.length < length) {
    const k = r();
    out += k < 0.7 ? pick(words) : k < 0.8 ? ' ' : k < 0.85 ? String(Math.floor(r() * 1e6)) : k < 0.93 ? pick([...'.,;:!?()[]{}"\'\n\t-']) : pick(specials);
  }
  return out;
}

function expectSameAsLibrary(json: Json, config: Json, texts: string[], idSeqs: number[][] = []): ByteLevelBpe {
  const lib = new Tokenizer(json as never, config as never);
  const mine = byteLevelBpeOf(json, config);
  expect(mine, 'byteLevelBpeOf refused a configuration it should reproduce').not.toBeNull();
  for (const text of texts) {
    const ids = lib.encode(text, { add_special_tokens: false }).ids;
    expect(mine!.encode(text), JSON.stringify(text.slice(0, 80))).toEqual(ids);
    if (ids.length > 0) expect(mine!.decode(ids)).toBe(lib.decode(ids, { skip_special_tokens: true }));
  }
  for (const ids of idSeqs) expect(mine!.decode(ids), JSON.stringify(ids.slice(0, 20))).toBe(lib.decode(ids, { skip_special_tokens: true }));
  return mine!;
}

/** Id sequences that split UTF-8 characters, mix in special and out-of-range ids. */
function seededIds(seed: number, vocab: number, count: number, length: number): number[][] {
  const r = seededRandom(seed);
  return Array.from({ length: count }, () => Array.from({ length: 1 + Math.floor(r() * length) }, () => (r() < 0.05 ? vocab + Math.floor(r() * 5) : Math.floor(r() * vocab))));
}

const specialsOf = (json: Json) => (json.added_tokens as { content: string }[]).map((t) => t.content);

describe('the compact byte-level BPE', () => {
  it("gives the library's ids and text with the default model's tokenizer", () => {
    const specials = specialsOf(DEFAULT_JSON);
    const texts = [...TEXTS, ...Array.from({ length: 40 }, (_, i) => seededText(i, specials, 400))];
    expectSameAsLibrary(DEFAULT_JSON, DEFAULT_CONFIG, texts, seededIds(1, 3072, 200, 30));
  });

  describe('with a granite-sized vocabulary (49,155 entries, the granite-shaped model)', () => {
    let json: Json, config: Json;
    beforeAll(() => {
      ({ json, config } = graniteTokenizer(49155, DEFAULT_SEED));
    });

    it("gives the library's ids and text", () => {
      const specials = specialsOf(json);
      const texts = [...TEXTS, ...Array.from({ length: 40 }, (_, i) => seededText(100 + i, specials, 600))];
      expectSameAsLibrary(json, config, texts, seededIds(2, 49155, 200, 30));
    });

    it('streams the same text deltas as decoding the whole list again for each token', () => {
      const lib = new HfTextCodec({ json, config }, null, { id: null, add: false }, { compact: false });
      const mine = new HfTextCodec({ json, config }, null, { id: null, add: false });
      expect([lib.implementation, mine.implementation]).toEqual(['library', 'compact']);
      for (const ids of [...seededIds(3, 49155, 30, 200), mine.encode(TEXTS[4] + TEXTS[5])]) {
        const a = new IncrementalDecoder(lib);
        const b = new IncrementalDecoder(mine);
        expect(ids.map((id) => b.push(id))).toEqual(ids.map((id) => a.push(id)));
      }
    });
  });

  it('reproduces the options it accepts: lstrip / rstrip, unk_token, add_prefix_space, use_regex off, clean-up, merges as pairs', () => {
    const specials = specialsOf(DEFAULT_JSON);
    const texts = [...TEXTS, ...Array.from({ length: 15 }, (_, i) => seededText(200 + i, specials, 300))];
    const variant = (edit: (j: Json, c: Json) => void) => {
      const [j, c] = [clone(DEFAULT_JSON), clone(DEFAULT_CONFIG)];
      edit(j, c);
      return [j, c] as const;
    };
    const model = (j: Json) => j.model as Json;
    const variants = [
      variant((j) => ((j.added_tokens as Json[])[4].lstrip = (j.added_tokens as Json[])[5].rstrip = true)),
      variant((j) => (model(j).unk_token = '<unk>')),
      variant((j) => ((j.pre_tokenizer as Json).add_prefix_space = true)),
      variant((j) => ((j.pre_tokenizer as Json).use_regex = false)),
      variant((_, c) => (c.clean_up_tokenization_spaces = true)),
      variant((j) => (model(j).merges = (model(j).merges as string[]).map((m) => m.split(' ')))),
      variant((j, c) => {
        (j.added_tokens as Json[]).push({ id: 3072, content: ' world', special: false }, { id: 3073, content: 'wor', special: true });
        c.additional_special_tokens = ['<|user|>'];
      }),
    ];
    for (const [j, c] of variants) expectSameAsLibrary(j, c, texts, seededIds(4, 3080, 50, 30));
  });

  it('is not used for a tokenizer it does not reproduce: the codec falls back to the library', () => {
    const metaspace = clone(DEFAULT_JSON);
    metaspace.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
    const fallback = clone(DEFAULT_JSON);
    (fallback.model as Json).byte_fallback = true;
    for (const json of [metaspace, fallback]) {
      expect(byteLevelBpeOf(json, DEFAULT_CONFIG)).toBeNull();
      const codec = new HfTextCodec({ json, config: DEFAULT_CONFIG }, null, { id: null, add: false });
      expect(codec.implementation).toBe('library');
      const lib = new Tokenizer(json as never, DEFAULT_CONFIG as never);
      expect(codec.encode(TEXTS[0])).toEqual(lib.encode(TEXTS[0], { add_special_tokens: false }).ids);
    }
  });
});

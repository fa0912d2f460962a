// A tokenizer's vocabulary as ids -> bytes and raw strings, kept compact (one string and offsets, not one JS string
// per id): what logprobs print as tokens and what a grammar engine (src/grammar) compiles its token masks against.
import type { Vocabulary } from './api';

type Json = Record<string, unknown>;

/** GPT-2's byte-level alphabet: the printable character each byte is spelled with in a byte-level vocabulary. */
function byteLevelDecoder(): Map<number, number> {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const charToByte = new Map<number, number>();
  for (const b of printable) charToByte.set(b, b);
  let extra = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) charToByte.set(256 + extra++, b);
  return charToByte;
}

function vocabType(json: Json): 'BYTE_LEVEL' | 'BYTE_FALLBACK' | 'RAW' {
  const isByteLevel = (p: unknown): boolean => {
    if (!p || typeof p !== 'object') return false;
    const o = p as { type?: string; pretokenizers?: unknown[]; decoders?: unknown[] };
    return o.type === 'ByteLevel' || (o.pretokenizers ?? o.decoders ?? []).some(isByteLevel);
  };
  if (isByteLevel(json.decoder) || isByteLevel(json.pre_tokenizer)) return 'BYTE_LEVEL';
  if ((json.model as Json | undefined)?.byte_fallback === true) return 'BYTE_FALLBACK';
  return 'RAW';
}

/** The vocabulary of a tokenizer.json (BPE or WordPiece vocab object, Unigram's [piece, score] list, added tokens). */
export function vocabularyOf(json: Json): Omit<Vocabulary, 'eosTokenIds'> {
  const model = (json.model ?? {}) as Json;
  const strs: string[] = [];
  const vocab = model.vocab;
  if (Array.isArray(vocab)) vocab.forEach((entry, id) => (strs[id] = String((entry as unknown[])[0])));
  else if (vocab && typeof vocab === 'object') for (const [s, id] of Object.entries(vocab as Record<string, number>)) strs[id] = s;
  const specialIds = new Set<number>();
  for (const t of (json.added_tokens ?? []) as { id: number; content: string; special?: boolean }[]) {
    strs[t.id] = t.content;
    if (t.special) specialIds.add(t.id);
  }
  const size = strs.length;
  const offsets = new Int32Array(size + 1);
  for (let i = 0; i < size; i++) offsets[i + 1] = offsets[i] + (strs[i]?.length ?? 0);
  const joined = strs.map((s) => s ?? '').join('');
  const type = vocabType(json);
  const added = new Set(((json.added_tokens ?? []) as { id: number }[]).map((t) => t.id));
  const utf8 = new TextEncoder();
  const charToByte = type === 'BYTE_LEVEL' ? byteLevelDecoder() : null;
  const str = (id: number) => joined.slice(offsets[id], offsets[id + 1]);
  return {
    size,
    special: (id) => specialIds.has(id),
    bytes(id) {
      if (id < 0 || id >= size) return new Uint8Array(0);
      const s = str(id);
      if (added.has(id)) return utf8.encode(s); // added tokens are spelled as themselves in every vocab type
      if (charToByte) {
        const out: number[] = [];
        for (const ch of s) {
          const b = charToByte.get(ch.codePointAt(0)!);
          if (b === undefined) out.push(...utf8.encode(ch)); // not byte-level spelled: keep as text
          else out.push(b);
        }
        return Uint8Array.from(out);
      }
      const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(s);
      if (type === 'BYTE_FALLBACK' && hex) return Uint8Array.of(parseInt(hex[1]!, 16));
      return utf8.encode(s.replaceAll('\u2581', ' ')); // SentencePiece's word-start mark is a space
    },
    encoded: () => ({ tokens: Array.from({ length: size }, (_, i) => str(i)), type }),
  };
}

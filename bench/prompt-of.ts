// Prompts of an exact token count for the benchmarks that run the Worker: the longest run of a word cycle that the
// model's own tokenizer encodes to at most `tokens` tokens (memory and time depend on the count, not the words).
export type Encode = (text: string) => number[];

const WORDS = 'the edge holds a small model and its experts answer in turn while the cache grows over the layers'.split(' ');

/** Text of exactly `tokens` tokens when the tokenizer allows it (else the longest shorter), with its count. */
export function promptOf(encode: Encode, tokens: number, words: readonly string[] = WORDS): { text: string; tokens: number } {
  const picked: string[] = [];
  // grow by whole words (a word is at least one token), then drop the last until it fits
  while (encode(picked.join(' ')).length < tokens) {
    const missing = tokens - encode(picked.join(' ')).length;
    for (let i = 0; i < Math.max(1, Math.floor(missing / 2)); i++) picked.push(words[picked.length % words.length]);
  }
  while (picked.length > 1 && encode(picked.join(' ')).length > tokens) picked.pop();
  const text = picked.join(' ');
  return { text, tokens: encode(text).length };
}

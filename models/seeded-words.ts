// Seeded word counts for the granite-shaped tokenizer's BPE training: English-like words from a letter bigram
// model written here, plus numbers, punctuation and whitespace runs. No corpus is read; the seed fixes the merges.
import { seededRandom } from '../src/engine/sampler';

/**
 * For each letter ('^': a word's first letter), the letters that follow it in English, most likely first;
 * written from general knowledge of English spelling, not counted from any text.
 */
const NEXT: Record<string, string> = {
  '^': 'tasowihbcmfpdrelnguyvjkqz',
  a: 'ntlrsdcmyigbpvkuwfzexho',
  b: 'eloaruyist',
  c: 'ohetaikrlucy',
  d: 'eiaosurylnd',
  e: 'rsndatlecvmxwypiofgkbhuq',
  f: 'oeraiftuly',
  g: 'ehraoiunslg',
  h: 'eaiotruyn',
  i: 'ntscolrdegmvfakpbz',
  j: 'uoea',
  k: 'eisnalyo',
  l: 'eliaoydsutfkm',
  m: 'eaoipbusym',
  n: 'dgteisaocykfunl',
  o: 'nrufmtwlosdpvcikbgaey',
  p: 'reaoliputhsy',
  q: 'u',
  r: 'eoaisytdnmurclgk',
  s: 'tehisoaucpmkylwn',
  t: 'hioeaursyltwc',
  u: 'rsntlcpmgdeiabfo',
  v: 'eiaouy',
  w: 'haeiosrnl',
  x: 'tpiaec',
  y: 'oesitamnp',
  z: 'eaoiyz',
};

// relative weight of word lengths 1..11 letters (short words are the common ones)
const LENGTHS = [3, 17, 21, 16, 11, 9, 8, 6, 4, 3, 2];
// punctuation pieces as GPT-2's pre-tokenizer cuts them (a leading space stays on the piece), prose and code
const PUNCT = ['.', ',', "'s", ':', ';', '!', '?', ' (', ')', '),', '):', ' "', '",', '."', ' =', ' ==', ' +', ' -', ' *', ' /', '()', '[', ']', ' {', ' }', ' #', '...', ' ->', "'t", "'re"];
const SPACES = ['\n', '\n\n', '   ', '       ', '\n   ', '\t'];

/** Index into a list whose entries grow less likely by `ratio` each (a geometric weight: the head dominates). */
function geometric(rand: () => number, n: number, ratio: number): number {
  const i = Math.floor(Math.log(1 - rand() * (1 - ratio ** n)) / Math.log(ratio));
  return Math.min(i, n - 1);
}

function pick(rand: () => number, weights: number[]): number {
  let r = rand() * weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < weights.length; i++) if ((r -= weights[i]) < 0) return i;
  return weights.length - 1;
}

/** One "word" as the pre-tokenizer would hand it to BPE: mostly lowercase letters after a space, some numbers, punctuation, whitespace. */
function drawWord(rand: () => number): string {
  const kind = rand();
  if (kind < 0.05) {
    let n = String(1 + Math.floor(rand() * 9));
    for (let len = 1 + geometric(rand, 4, 0.5); n.length < len; ) n += String(Math.floor(rand() * 10));
    return (rand() < 0.7 ? ' ' : '') + n;
  }
  if (kind < 0.08) return PUNCT[geometric(rand, PUNCT.length, 0.85)];
  if (kind < 0.09) return SPACES[geometric(rand, SPACES.length, 0.6)];
  const len = 1 + pick(rand, LENGTHS);
  let w = '';
  for (let prev = '^'; w.length < len; w += prev) prev = NEXT[prev][geometric(rand, NEXT[prev].length, 0.7)];
  if (rand() < 0.12) w = w[0].toUpperCase() + w.slice(1);
  return (rand() < 0.75 ? ' ' : '') + w;
}

/**
 * `types` seeded word draws with Zipf counts (the i-th draw counts about 1/i as often as the first), summed where
 * a word is drawn twice: what a corpus's word-frequency table looks like, for pair counting to learn merges from.
 */
export function seededWordCounts(seed: number, types: number): Map<string, number> {
  const rand = seededRandom(seed);
  const counts = new Map<string, number>();
  for (let i = 0; i < types; i++) {
    const w = drawWord(rand);
    counts.set(w, (counts.get(w) ?? 0) + Math.max(1, Math.floor(1e6 / (i + 10))));
  }
  return counts;
}

// Token sampling: greedy at temperature 0, else temperature -> top-k -> top-p (nucleus) with a seeded PRNG,
// so the same seed and parameters reproduce the same output.
import type { SamplingParams } from './api';

/** mulberry32: tiny, fast, good enough for sampling; state is one uint32. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * Scratch shared by every Sampler (sample() runs to completion without awaiting, so one set serves all): sorting a
 * 49k-entry vocabulary with Array.from / sort / map allocated ~12 MB of garbage per token, most of the front
 * isolate's JS heap during a generation (bench/results/heap-snapshot.md).
 */
const scratch = {
  order: new Int32Array(0),
  spare: new Int32Array(0),
  key: new Uint32Array(0),
  keyBits: new Float32Array(0),
  probs: new Float64Array(0),
  count: new Int32Array(256),
};

function grow(n: number): void {
  if (scratch.order.length >= n) return;
  scratch.order = new Int32Array(n);
  scratch.spare = new Int32Array(n);
  scratch.keyBits = new Float32Array(n);
  scratch.key = new Uint32Array(scratch.keyBits.buffer);
  scratch.probs = new Float64Array(n);
}

/**
 * Ids by logit, descending, lower id first among equal logits (the order a comparator `b - a || a - b` gives) into
 * scratch.order: a stable LSD radix sort on the float bits, in place and allocation-free.
 */
function sortByLogit(logits: Float32Array): Int32Array {
  const n = logits.length;
  grow(n);
  const { keyBits, key, count } = scratch;
  for (let i = 0; i < n; i++) keyBits[i] = logits[i] === 0 ? 0 : logits[i]; // -0 ties +0, as the comparator has it
  for (let i = 0; i < n; i++) {
    // float bits -> unsigned order ascending in value, then complemented: ascending keys = descending logits
    const b = key[i];
    key[i] = ~(b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
  }
  let from = scratch.order;
  let to = scratch.spare;
  for (let i = 0; i < n; i++) from[i] = i;
  for (let shift = 0; shift < 32; shift += 8) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(key[from[i]] >>> shift) & 255]++;
    for (let d = 0, sum = 0; d < 256; d++) {
      const c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) to[count[(key[from[i]] >>> shift) & 255]++] = from[i];
    [from, to] = [to, from];
  }
  return from; // four passes: back in scratch.order
}

export class Sampler {
  private readonly random: () => number;

  constructor(private readonly params: SamplingParams) {
    this.random = seededRandom(params.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  sample(logits: Float32Array): number {
    return pickToken(logits, this.params, this.draw());
  }

  /**
   * The uniform draw the next sample consumes (none under greedy: 0): a generation whose logits live on a head
   * shard draws here and sends it, so the shard picks exactly the token this sampler would.
   */
  draw(): number {
    return this.params.temperature <= 0 ? 0 : this.random();
  }
}

/** The token `params` pick from `logits` with the uniform draw `u` in [0, 1) (unused under greedy). */
export function pickToken(logits: Float32Array, params: Pick<SamplingParams, 'temperature' | 'topK' | 'topP'>, u: number): number {
  if (params.temperature <= 0) return argmax(logits);
  const { ids, n, sum } = candidates(logits, params);
  const probs = scratch.probs;
  let r = u * sum;
  for (let i = 0; i < n; i++) {
    r -= probs[i];
    if (r <= 0) return ids[i];
  }
  return ids[n - 1];
}

/**
 * The distribution pickToken draws from, dense over the vocabulary, into `out` (zero outside the candidates; greedy:
 * all mass on the argmax): what speculative sampling compares draft and verifier by.
 */
export function tokenDistribution(logits: Float32Array, params: Pick<SamplingParams, 'temperature' | 'topK' | 'topP'>, out: Float32Array): Float32Array {
  out.fill(0);
  if (params.temperature <= 0) {
    out[argmax(logits)] = 1;
    return out;
  }
  const { ids, n, sum } = candidates(logits, params);
  for (let i = 0; i < n; i++) out[ids[i]] = scratch.probs[i] / sum;
  return out;
}

/**
 * The candidates after temperature -> top-k -> top-p: ids by logit descending (stable), the first n kept, their
 * unnormalised weights in scratch.probs[0..n) summing to `sum`.
 */
function candidates(logits: Float32Array, params: Pick<SamplingParams, 'temperature' | 'topK' | 'topP'>): { ids: Int32Array; n: number; sum: number } {
  const { temperature, topK, topP } = params;
  const ids = sortByLogit(logits);
  let n = logits.length;
  if (topK > 0 && topK < n) n = topK;
  const probs = scratch.probs;
  const max = logits[ids[0]];
  let sum = 0;
  for (let i = 0; i < n; i++) sum += probs[i] = Math.exp((logits[ids[i]] - max) / temperature);
  if (topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < n) {
      cum += probs[keep] / sum;
      keep++;
      if (cum >= topP) break;
    }
    n = keep;
    sum = 0;
    for (let i = 0; i < n; i++) sum += probs[i];
  }
  return { ids, n, sum };
}

// One expert call: (token, expert) pairs over the activations of nTok tokens, results back in pair order. The shape
// the Worker sends (src/remote), the wire carries (expert-wire.ts) and the backend batches (gpu-backend), and the
// two plans over pairs that the Worker, the replicas map and the backend all make: by expert, and rows used.
import { selectRows, type Activations } from './activations';
import { addScaledF32 } from '../common/add-scaled-f32';

export interface ExpertCall {
  readonly layer: number;
  readonly hidden: number;
  readonly nTok: number;
  /** pairs, as parallel arrays: token index (< nTok), expert id, routing weight */
  readonly tokens: ArrayLike<number>;
  readonly experts: ArrayLike<number>;
  readonly weights: ArrayLike<number>;
  /** x (nTok, hidden) */
  readonly activations: Activations;
}

/** Pairs that share a key (an expert, a replica), in order of first use; `members` are pair indexes, in pair order. */
export interface PairGroup {
  readonly key: number;
  readonly members: readonly number[];
}

/**
 * Pairs 0..n-1 grouped by keyOf(pair), groups in order of first use (as the router listed them): a group's
 * weights are read once for all its rows, and row j of group g scatters back to pair members[j].
 */
export function groupPairs(n: number, keyOf: (pair: number) => number): PairGroup[] {
  const byKey = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const k = keyOf(i);
    const list = byKey.get(k);
    if (list) list.push(i);
    else byKey.set(k, [i]);
  }
  return Array.from(byKey, ([key, members]) => ({ key, members }));
}

/** The rows that pairs use, renumbered 0..n-1 in order of first use. */
export interface UsedRows {
  /** rows[i] = the original row of new row i */
  readonly rows: number[];
  /** tokens[p] = the new row of pair p */
  readonly tokens: number[];
}

export function usedRows(tokens: ArrayLike<number>): UsedRows {
  const index = new Map<number, number>();
  const renumbered = Array.from(tokens, (t) => {
    let i = index.get(t);
    if (i === undefined) index.set(t, (i = index.size));
    return i;
  });
  return { rows: [...index.keys()], tokens: renumbered };
}

/** The pairs `pairs` of call c (in that order), over only the tokens they use. */
export function subCall(c: ExpertCall, pairs: readonly number[]): ExpertCall {
  const used = usedRows(pairs.map((p) => c.tokens[p]));
  return {
    layer: c.layer,
    hidden: c.hidden,
    nTok: used.rows.length,
    tokens: used.tokens,
    experts: pairs.map((p) => c.experts[p]),
    weights: pairs.map((p) => c.weights[p]),
    activations: selectRows(c.activations, c.hidden, used.rows),
  };
}

/**
 * COMBINE: y (nTok, H), y[t] = the sum over the pairs of token t, in pair order, of weight * rows[pair], accumulated
 * in f32 (what the front would compute from the uncombined rows).
 */
export function combinePairs(c: Pick<ExpertCall, 'nTok' | 'hidden' | 'tokens' | 'weights'>, rows: Float32Array): Float32Array {
  const H = c.hidden;
  const y = new Float32Array(c.nTok * H);
  for (let i = 0; i < c.tokens.length; i++) {
    const w = c.weights[i];
    const o = c.tokens[i] * H;
    addScaledF32(y.subarray(o, o + H), rows.subarray(i * H, (i + 1) * H), w);
  }
  return y;
}

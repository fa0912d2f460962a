// Inclusive ranges of layer or expert ids: how a backend replica's share of a model is written (--layers 0-11,
// BACKENDS' "experts": "0-31") and checked, on the Worker and on the backend alike.

/** Inclusive range of ids. */
export interface IdRange {
  readonly lo: number;
  readonly hi: number;
}

/**
 * "a-b", "a" (spaces around the numbers allowed) or a non-negative integer -> a frozen range; null when `v` is none
 * of these. lo > hi is returned as written: the caller refuses it with its own message.
 */
export function parseIdRange(v: unknown): IdRange | null {
  let m: (string | undefined)[] | null = null;
  if (typeof v === 'number') m = Number.isInteger(v) && v >= 0 ? [String(v)] : null;
  else if (typeof v === 'string') m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(v)?.slice(1) ?? null;
  if (!m) return null;
  const lo = Number(m[0]);
  return Object.freeze({ lo, hi: Number(m[1] ?? m[0]) });
}

/** "a-b", "a" when lo == hi, "all" for null (every id). */
export function formatIdRange(r: IdRange | null): string {
  return r ? (r.lo === r.hi ? `${r.lo}` : `${r.lo}-${r.hi}`) : 'all';
}

/** True when id is in r (null: every id). */
export function inIdRange(r: IdRange | null, id: number): boolean {
  return r === null || (id >= r.lo && id <= r.hi);
}

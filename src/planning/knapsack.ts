// Multiple-choice 0/1 knapsack by dynamic programming over byte units: each item (an expert) is left out
// or taken in one of its options (e.g. q8_0, or q4_0 for mixed precision). Exact when the table fits
// (unit = gcd of the sizes, which expert sizes share); otherwise sizes round up to a coarser unit, which
// keeps every answer within the budget and says so with exact = false.

export interface KnapsackOption {
  /** bytes, > 0 */
  size: number;
  value: number;
}

export interface KnapsackResult {
  /** choice[i] = index into items[i] of the option taken, or -1 when item i is left out */
  choice: number[];
  value: number;
  size: number;
  /** false when sizes were rounded up to fit the table: the answer fits, but may not be the best one */
  exact: boolean;
}

/** Most table cells (items x capacity units) before the unit coarsens; 1 byte each for the choices. */
export const MAX_CELLS = 32_000_000;

export function knapsack(items: readonly (readonly KnapsackOption[])[], capacity: number, maxCells = MAX_CELLS): KnapsackResult {
  const n = items.length;
  for (const opts of items) {
    if (opts.length > 255) throw new RangeError('at most 255 options per item');
    for (const o of opts) if (!(o.size > 0) || !Number.isInteger(o.size)) throw new RangeError(`option sizes are positive integers, got ${o.size}`);
  }
  const none: KnapsackResult = { choice: new Array<number>(n).fill(-1), value: 0, size: 0, exact: true };
  if (n === 0 || capacity <= 0) return none;

  let unit = 0;
  for (const opts of items) for (const o of opts) unit = gcd(unit, o.size);
  let exact = true;
  const maxUnits = Math.max(1, Math.floor(maxCells / n) - 1);
  if (Math.floor(capacity / unit) > maxUnits) {
    const coarse = Math.ceil(capacity / maxUnits);
    if (coarse > unit) {
      unit = coarse;
      exact = false;
    }
  }
  const C = Math.floor(capacity / unit);
  const w = items.map((opts) => opts.map((o) => Math.ceil(o.size / unit))); // rounded up: never over budget
  const best = new Float64Array(C + 1); // best[c] = most value within c units over the items so far
  const choice = new Uint8Array(n * (C + 1)); // 0: left out, k: option k-1

  for (let i = 0; i < n; i++) {
    const opts = items[i];
    const row = i * (C + 1);
    // downwards, so best[c - w] still holds the value without item i
    for (let c = C; c >= 0; c--) {
      let v = best[c];
      let k = 0;
      for (let o = 0; o < opts.length; o++) {
        const wo = w[i][o];
        if (wo <= c) {
          const cand = best[c - wo] + opts[o].value;
          if (cand > v) {
            v = cand;
            k = o + 1;
          }
        }
      }
      best[c] = v;
      choice[row + c] = k;
    }
  }

  const out = new Array<number>(n).fill(-1);
  let c = C;
  let value = 0;
  let size = 0;
  for (let i = n - 1; i >= 0; i--) {
    const k = choice[i * (C + 1) + c];
    if (k > 0) {
      out[i] = k - 1;
      c -= w[i][k - 1];
      value += items[i][k - 1].value;
      size += items[i][k - 1].size;
    }
  }
  return { choice: out, value, size, exact };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

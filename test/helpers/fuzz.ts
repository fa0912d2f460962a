// fast-check settings shared by the Node-side fuzz tests: each test's bounded run count for `npm test`, or
// FUZZ_RUNS for a long run (`npm run fuzz`), and one seed (FUZZ_SEED) so a failure replays exactly.
import fc from 'fast-check';
import { concatBytes } from '../../src/common/bytes';

export const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261123);

/** FUZZ_RUNS when set, else `bounded` (what `npm test` runs). */
export function fuzzRuns(bounded: number): number {
  const n = Number(process.env.FUZZ_RUNS);
  return n > 0 ? n : bounded;
}

/** fc.assert parameters for a property that runs `bounded` times under `npm test`. */
export function fuzzParams(bounded: number): fc.Parameters<unknown> {
  return { numRuns: fuzzRuns(bounded), seed: FUZZ_SEED };
}

/** A vitest timeout that grows with FUZZ_RUNS (`msPerRun` is generous: no test asserts on time). */
export function fuzzTimeout(bounded: number, msPerRun: number): number {
  return Math.max(60_000, fuzzRuns(bounded) * msPerRun);
}

/** Runs `fn` and returns what it threw (undefined if nothing): the fuzz properties check the error's class. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e;
  }
}

/** A mutation of `bytes`: flipped bits, overwritten, inserted and deleted runs, truncation. */
export function mutatedBytes(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  const at = fc.nat({ max: Math.max(0, bytes.length - 1) });
  const edit = fc.oneof(
    fc.tuple(fc.constant('flip' as const), at, fc.integer({ min: 0, max: 7 })),
    fc.tuple(fc.constant('set' as const), at, fc.uint8Array({ minLength: 1, maxLength: 8 })),
    fc.tuple(fc.constant('insert' as const), at, fc.uint8Array({ minLength: 1, maxLength: 16 })),
    fc.tuple(fc.constant('delete' as const), at, fc.integer({ min: 1, max: 16 })),
    fc.tuple(fc.constant('truncate' as const), at, fc.constant(0)),
  );
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let b: Uint8Array = bytes.slice();
    for (const [kind, i, arg] of edits) {
      if (kind === 'flip') b[i] = (b[i] ?? 0) ^ (1 << (arg as number));
      else if (kind === 'set') b.set((arg as Uint8Array).subarray(0, Math.max(0, b.length - i)), Math.min(i, b.length));
      else if (kind === 'insert') b = concat(b.subarray(0, i), arg as Uint8Array, b.subarray(i));
      else if (kind === 'delete') b = concat(b.subarray(0, i), b.subarray(i + (arg as number)));
      else b = b.slice(0, i);
    }
    return b;
  });
}

const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);

// The incremental SHA-256 a streamed load checks objects with gives the one-shot digest whatever the chunking
// (Node's side here; workerd's DigestStream is exercised by every trunk load of test/worker).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Hex, sha256Stream } from '../../../src/format/digest';

async function streamed(bytes: Uint8Array, cuts: number[]): Promise<string> {
  const hash = sha256Stream();
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    await hash.update(bytes.subarray(at, Math.max(at, cut)));
    at = Math.max(at, cut);
  }
  return hash.hex();
}

describe('sha256Stream', () => {
  it('matches the FIPS 180-2 test vector and the empty input', async () => {
    expect(await streamed(new TextEncoder().encode('abc'), [1, 2])).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await streamed(new Uint8Array(0), [])).toBe(await sha256Hex(new Uint8Array(0)));
  });

  it('equals sha256Hex on random bytes cut into random chunks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 5000 }), fc.array(fc.nat(5000), { maxLength: 20 }), async (bytes, cuts) => {
        const sorted = cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b);
        expect(await streamed(bytes, sorted)).toBe(await sha256Hex(bytes));
      }),
      { numRuns: 200 },
    );
  });

  it('one byte at a time over block boundaries', async () => {
    const bytes = Uint8Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff);
    expect(await streamed(bytes, [...bytes.keys()])).toBe(await sha256Hex(bytes));
  });
});

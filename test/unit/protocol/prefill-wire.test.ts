// The prefill call's frames: what one side encodes the other decodes to the same values, and anything malformed
// (a flipped row byte, wrong lengths, reserved bits, unknown types, other kinds, random bytes) is a WireError.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRequest, FrameKind, HEADER_BYTES, WireError } from '../../../src/protocol/expert-wire';
import {
  decodePrefillFrame, encodeKvFrame, encodePrefilled, encodePrefillRequest, KV_HEAD_BYTES, kvRunBytes, MAX_KV_PAYLOAD_BYTES, positionsPerKvFrame,
} from '../../../src/protocol/prefill-wire';

const tag = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
const h = { requestId: 77, modelTag: tag };

async function refused(bytes: Uint8Array, match: RegExp): Promise<void> {
  const e = await decodePrefillFrame(bytes).then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(WireError);
  expect((e as Error).message).toMatch(match);
}

describe('round trips', () => {
  it('request, KV rows of every type, prefilled', async () => {
    const req = await decodePrefillFrame(encodePrefillRequest({ ...h, kvType: 'q4_0', tokens: [5, 0, 4_000_000_000] }));
    expect(req).toMatchObject({ kind: 'prefill', requestId: 77, kvType: 'q4_0' });
    expect(Array.from((req as unknown as { tokens: Uint32Array }).tokens)).toEqual([5, 0, 4_000_000_000]);
    for (const kvType of ['f32', 'f16', 'q8_0', 'q4_0'] as const) {
      const rows = Uint8Array.from({ length: 2 * kvRunBytes(kvType, 3, 64) }, (_, i) => (i * 31) & 255);
      const kv = await decodePrefillFrame(await encodeKvFrame(h, { layer: 9, kvType, pos0: 128, nPos: 3, kvDim: 64, rows }));
      expect(kv).toMatchObject({ kind: 'kv', layer: 9, kvType, pos0: 128, nPos: 3, kvDim: 64 });
      expect(Array.from((kv as unknown as { rows: Uint8Array }).rows)).toEqual(Array.from(rows));
    }
    const hidden = Float32Array.from([1.5, -2, 0]);
    const counts = [[3, 0, 77], [1, 2, 4_000_000_000]];
    const done = await decodePrefillFrame(encodePrefilled(h, { positions: 40, hidden, counts }));
    expect(done).toMatchObject({ kind: 'prefilled', positions: 40, counts });
    expect(Array.from((done as unknown as { hidden: Float32Array }).hidden)).toEqual([1.5, -2, 0]);
  });

  it('a KV frame of as many positions as fit stays within the payload limit', () => {
    for (const kvType of ['f32', 'f16', 'q8_0', 'q4_0'] as const) {
      for (const kvDim of [64, 512, 4096]) {
        const n = positionsPerKvFrame(kvType, kvDim);
        expect(KV_HEAD_BYTES + 2 * kvRunBytes(kvType, n, kvDim)).toBeLessThanOrEqual(MAX_KV_PAYLOAD_BYTES);
        expect(KV_HEAD_BYTES + 2 * kvRunBytes(kvType, n + 1, kvDim)).toBeGreaterThan(MAX_KV_PAYLOAD_BYTES);
      }
    }
  });
});

describe('refusals', () => {
  it('a flipped byte in the rows fails the digest', async () => {
    const rows = new Uint8Array(2 * kvRunBytes('q8_0', 2, 32)).fill(7);
    const f = await encodeKvFrame(h, { layer: 0, kvType: 'q8_0', pos0: 0, nPos: 2, kvDim: 32, rows });
    f[f.length - 5] ^= 1;
    await refused(f, /SHA-256/);
  });

  it('wrong lengths, reserved bytes, unknown types, zero tokens, another kind', async () => {
    const req = encodePrefillRequest({ ...h, kvType: 'f16', tokens: [1, 2] });
    await refused(req.slice(0, -4), /payload bytes/); // header says more than it carries
    const reserved = req.slice();
    reserved[HEADER_BYTES + 1] = 1;
    await refused(reserved, /reserved/);
    const unknown = req.slice();
    unknown[HEADER_BYTES] = 9;
    await refused(unknown, /unknown KV cache type/);
    await refused(encodePrefillRequest({ ...h, kvType: 'f16', tokens: [] }), /at least one token/);
    const notRows = await encodeKvFrame(h, { layer: 0, kvType: 'f32', pos0: 0, nPos: 1, kvDim: 4, rows: new Uint8Array(32) });
    new DataView(notRows.buffer).setUint32(HEADER_BYTES + 8, 2, true); // nPos 2: 32 bytes are not two rows
    await refused(notRows, /carries 32 bytes/);
    const expert = encodeRequest({ ...h, combine: false, resultDType: 'f32', layer: 0, hidden: 32, nTok: 1, tokens: new Uint32Array([0]), experts: new Uint16Array([0]), weights: new Float32Array([1]), activations: { dtype: 'f32', data: new Float32Array(32) } });
    expect(expert[5]).toBe(FrameKind.request);
    await refused(expert, /not part of the prefill call/);
  });

  it('random bytes and random mutations of valid frames are WireErrors, never anything else', async () => {
    const valid = [
      encodePrefillRequest({ ...h, kvType: 'q8_0', tokens: [3, 4, 5] }),
      await encodeKvFrame(h, { layer: 1, kvType: 'q4_0', pos0: 0, nPos: 1, kvDim: 32, rows: new Uint8Array(2 * kvRunBytes('q4_0', 1, 32)) }),
      encodePrefilled(h, { positions: 3, hidden: new Float32Array(8), counts: [[1, 2], [3, 0]] }),
    ];
    await fc.assert(fc.asyncProperty(fc.nat(valid.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.uint8Array({ maxLength: 96 }), fc.boolean(), async (which, flips, junk, useJunk) => {
      const bytes = useJunk ? junk : valid[which].slice();
      if (!useJunk) for (const [at, v] of flips) bytes[at % bytes.length] = v;
      try {
        await decodePrefillFrame(bytes);
      } catch (e) {
        expect(e).toBeInstanceOf(WireError);
      }
    }), { numRuns: 300 });
  });
});

// The expert wire protocol (src/protocol): every frame kind and dtype round-trips, the header layout is the one
// documented, q8_0 activations survive dequantize -> requantize unchanged, and a seeded fuzz of broken frames
// only ever yields a valid frame or a WireError.
import { describe, expect, it } from 'vitest';
import { QK, quantizeQ8_0 } from '../../../src/format/quant';
import { activationDTypeFor, activationsToF32, encodeActivations, type ActDType } from '../../../src/protocol/activations';
import {
  decodeError, decodeFrame, decodeRequest, decodeResult, encodeError, encodeRequest, encodeResult, errorFrameFor,
  checkResultFor, HEADER_BYTES, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, tagHex, WireError,
  type DecodedFrame, type ExpertRequest, type ResultDType,
} from '../../../src/protocol/expert-wire';
import { modelTagOf } from '../../../src/format/digest';
import { Rng } from '../kernels/rng';

const TAG = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

function makeRequest(rng: Rng, act: ActDType, resultDType: ResultDType, combine: boolean, nTok = 1 + rng.int(5), hidden = 32 * (1 + rng.int(3))): ExpertRequest {
  const nPairs = rng.int(3 * nTok + 1);
  const x = rng.floats(nTok * hidden);
  return {
    requestId: rng.int(2 ** 32),
    modelTag: TAG,
    combine,
    layer: rng.int(65536),
    hidden,
    nTok,
    tokens: Array.from({ length: nPairs }, () => rng.int(nTok)),
    experts: Array.from({ length: nPairs }, () => rng.int(65536)),
    weights: Array.from({ length: nPairs }, () => Math.fround(rng.next())),
    activations: encodeActivations(x, act),
    resultDType,
  };
}

function sameActivations(a: ExpertRequest['activations'], b: ExpertRequest['activations']): void {
  expect(b.dtype).toBe(a.dtype);
  if (a.dtype === 'q8_0' && b.dtype === 'q8_0') {
    expect([...b.qs]).toEqual([...a.qs]);
    expect([...b.d]).toEqual([...a.d]);
  } else if (a.dtype !== 'q8_0' && b.dtype !== 'q8_0') {
    expect([...b.data]).toEqual([...a.data]);
  }
}

describe('expert wire round trips', () => {
  const rng = new Rng(1);
  for (const act of ['f32', 'f16', 'q8_0'] as const) {
    for (const res of ['f32', 'f16'] as const) {
      for (const combine of [false, true]) {
        it(`request with ${act} activations, ${res} results${combine ? ', COMBINE' : ''}`, () => {
          const req = makeRequest(rng, act, res, combine);
          const bytes = encodeRequest(req);
          const got = decodeRequest(bytes);
          expect(got.kind).toBe('request');
          expect(got.requestId).toBe(req.requestId);
          expect([...got.modelTag]).toEqual([...TAG]);
          expect(got.combine).toBe(combine);
          expect([got.layer, got.hidden, got.nTok, got.resultDType]).toEqual([req.layer, req.hidden, req.nTok, res]);
          expect([...got.tokens]).toEqual(Array.from(req.tokens));
          expect([...got.experts]).toEqual(Array.from(req.experts));
          expect([...got.weights]).toEqual(Array.from(req.weights));
          sameActivations(req.activations, got.activations);
          expect(encodeRequest(got)).toEqual(bytes); // decode is lossless
        });
      }
    }
  }

  for (const dtype of ['f32', 'f16'] as const) {
    it(`result in ${dtype}`, () => {
      const values = rng.floats(3 * 64);
      const bytes = encodeResult({ requestId: 7, modelTag: TAG, combine: true, dtype, count: 3, hidden: 64, values });
      const got = decodeResult(bytes);
      expect([got.kind, got.requestId, got.combine, got.dtype, got.count, got.hidden]).toEqual(['result', 7, true, dtype, 3, 64]);
      const want = dtype === 'f32' ? values : encodeActivations(values, 'f16');
      expect([...got.values]).toEqual(want instanceof Float32Array ? [...want] : [...activationsToF32(want)]);
    });
  }

  it('an empty request (no pairs, no tokens) and an empty result', () => {
    const req = { ...makeRequest(rng, 'f32', 'f32', false, 0, 64), tokens: [], experts: [], weights: [] };
    expect(decodeRequest(encodeRequest(req)).nTok).toBe(0);
    expect(decodeResult(encodeResult({ requestId: 1, modelTag: TAG, combine: false, dtype: 'f32', count: 0, hidden: 64, values: new Float32Array(0) })).count).toBe(0);
  });

  it('error frames, with long and non-ASCII text clipped on a code point boundary', () => {
    const e = decodeError(encodeError({ requestId: 9, modelTag: TAG, status: 409, code: 'model_mismatch', message: 'modèle ≠ 🙂' }));
    expect([e.kind, e.requestId, e.status, e.code, e.message]).toEqual(['error', 9, 409, 'model_mismatch', 'modèle ≠ 🙂']);
    const long = decodeError(encodeError({ requestId: 0, modelTag: TAG, status: 500, code: 'x', message: '🙂'.repeat(5000) }));
    expect(long.message.length).toBeGreaterThan(1000);
    expect(long.message).toBe('🙂'.repeat(long.message.length / 2));
  });

  it('errorFrameFor keeps a WireError status and turns anything else into a 500', () => {
    const a = decodeError(errorFrameFor(new WireError(404, 'unknown_expert', 'no expert 9', 12), TAG));
    expect([a.status, a.code, a.requestId]).toEqual([404, 'unknown_expert', 12]);
    const b = decodeError(errorFrameFor(new Error('boom'), TAG, 5));
    expect([b.status, b.code, b.message, b.requestId]).toEqual([500, 'internal', 'boom', 5]);
  });

  it('lays the header out as documented: "MOEX", version, kind, flags, id, tag, payload length', () => {
    const bytes = encodeResult({ requestId: 0x01020304, modelTag: TAG, combine: true, dtype: 'f32', count: 1, hidden: 2, values: new Float32Array([1, 2]) });
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('MOEX');
    expect([bytes[4], bytes[5], bytes[6], bytes[7]]).toEqual([PROTOCOL_VERSION, 2, 1, 0]);
    expect([...bytes.subarray(8, 12)]).toEqual([4, 3, 2, 1]);
    expect([...bytes.subarray(12, 20)]).toEqual([...TAG]);
    expect(new DataView(bytes.buffer).getUint32(20, true)).toBe(bytes.length - HEADER_BYTES);
  });

  it('decodes frames that sit at an odd offset inside a bigger buffer', () => {
    const bytes = encodeRequest(makeRequest(rng, 'f32', 'f32', false));
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    expect(encodeRequest(decodeRequest(big.subarray(3)))).toEqual(bytes);
  });

  it('modelTagOf is the first 8 bytes of SHA-256 of the manifest bytes', async () => {
    expect(tagHex(await modelTagOf(new TextEncoder().encode('abc')))).toBe('ba7816bf8f01cfea');
  });

  it('rejects a frame of another kind where one kind is expected', () => {
    const bytes = encodeError({ requestId: 3, modelTag: TAG, status: 500, code: 'x', message: '' });
    expect(() => decodeRequest(bytes)).toThrow(WireError);
    expect(() => decodeResult(bytes)).toThrow(/expected a result frame/);
  });
});

describe('q8_0 activations', () => {
  it('encode as the kernels quantize, and dequantize -> requantize gives the same blocks', () => {
    const rng = new Rng(2);
    const x = rng.floats(8 * 64, 3);
    x.fill(0, 64, 96); // an all-zero block
    x[200] = 1e-30; // a block whose scale underflows f16
    const a = encodeActivations(x, 'q8_0');
    const ref = quantizeQ8_0(x, 'activation');
    if (a.dtype !== 'q8_0') throw new Error('dtype');
    expect([...new Uint8Array(a.qs.buffer, a.qs.byteOffset, a.qs.length)]).toEqual([...ref.qs]);
    const again = quantizeQ8_0(activationsToF32(a), 'activation');
    expect([...again.d]).toEqual([...ref.d]);
    for (let b = 0; b < ref.d.length; b++) {
      if (ref.d[b] === 0) continue; // a zero scale makes every value 0 whatever the quants
      expect([...again.qs.subarray(b * QK, b * QK + QK)]).toEqual([...ref.qs.subarray(b * QK, b * QK + QK)]);
    }
  });

  it('picks q8_0 for quantized experts and f32 for float experts', () => {
    expect(['q8_0', 'q4_0', 'f16', 'f32'].map((d) => activationDTypeFor(d as 'f32'))).toEqual(['q8_0', 'q8_0', 'f32', 'f32']);
  });
});

describe('strict decoding', () => {
  const rng = new Rng(3);
  const valid = () => encodeRequest(makeRequest(rng, 'f32', 'f32', false, 2, 32));
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const rejects = (b: Uint8Array, re: RegExp, status = 400) => {
    let err: unknown;
    try { decodeFrame(b); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(WireError);
    expect((err as WireError).status).toBe(status);
    expect((err as WireError).message).toMatch(re);
  };

  it('refuses bad magic, versions, kinds, flags and payload lengths', () => {
    let b = valid(); b[0] ^= 1; rejects(b, /magic/);
    b = valid(); b[4] = 2; rejects(b, /version 2/);
    b = valid(); b[5] = 9; rejects(b, /kind 9/);
    b = valid(); b[6] = 2; rejects(b, /flags/);
    b = valid(); dv(b).setUint32(20, dv(b).getUint32(20, true) + 1, true); rejects(b, /payload bytes/);
    b = valid(); dv(b).setUint32(20, 0xffffffff, true); rejects(b, /exceeds/);
    rejects(valid().subarray(0, 10), /shorter than the 24-byte header/);
    rejects(new Uint8Array([...valid(), 0]), /payload bytes/);
  });

  it('refuses bad request fields and keeps the request id for the error reply', () => {
    const P = HEADER_BYTES;
    const cases: [(v: DataView) => void, RegExp][] = [
      [(v) => v.setUint8(P + 2, 3), /activation dtype 3/],
      [(v) => v.setUint8(P + 3, 2), /result dtype 2/],
      [(v) => v.setUint32(P + 4, 0, true), /hidden size is 0/],
      [(v) => v.setUint32(P + 8, 0x7fffffff, true), /needs .* payload bytes/],
      [(v) => v.setUint32(P + 12, 0xffffffff, true), /needs .* payload bytes/],
    ];
    for (const [mutate, re] of cases) {
      const b = valid();
      mutate(dv(b));
      rejects(b, re);
      try { decodeFrame(b); } catch (e) { expect((e as WireError).requestId).toBe(dv(b).getUint32(8, true)); }
    }
  });

  it('refuses out-of-range tokens, reserved bits, non-finite weights and activations, odd q8_0 widths', () => {
    const req = makeRequest(rng, 'f32', 'f32', false, 2, 32);
    const one = { ...req, tokens: [1], experts: [0], weights: [0.5] };
    const P = HEADER_BYTES + 16;
    let b = encodeRequest(one); dv(b).setUint32(P, 2, true); rejects(b, /token 2 is out of range/);
    b = encodeRequest(one); dv(b).setUint16(P + 6, 1, true); rejects(b, /reserved/);
    b = encodeRequest(one); dv(b).setFloat32(P + 8, NaN, true); rejects(b, /weight NaN/);
    b = encodeRequest(one); dv(b).setFloat32(P + 12 + 4 * 5, Infinity, true); rejects(b, /activation 5 is not finite/);
    const half = encodeRequest({ ...one, activations: encodeActivations(new Float32Array(64), 'f16') });
    dv(half).setUint16(P + 12 + 2 * 3, 0x7c00, true); rejects(half, /activation 3 is not finite/);
    const q = encodeRequest({ ...one, activations: encodeActivations(new Float32Array(64).fill(1), 'q8_0') });
    dv(q).setUint16(P + 12 + 64, 0xfc00, true); rejects(q, /q8_0 scale 0 is not finite/);
    const odd = encodeRequest({ ...one, hidden: 16, nTok: 1, tokens: [0], activations: encodeActivations(new Float32Array(16), 'f32') });
    odd[HEADER_BYTES + 2] = 2; rejects(odd, /hidden % 32/);
  });

  it('refuses error frames with bad statuses, lengths or UTF-8', () => {
    const e = encodeError({ requestId: 1, modelTag: TAG, status: 404, code: 'ab', message: 'cd' });
    let b = e.slice(); dv(b).setUint16(HEADER_BYTES, 200, true); rejects(b, /status 200/);
    b = e.slice(); dv(b).setUint16(HEADER_BYTES + 2, 50, true); rejects(b, /ends inside its code/);
    b = e.slice(); b[HEADER_BYTES + 4] = 0xff; rejects(b, /UTF-8/);
    b = e.slice(); dv(b).setUint16(HEADER_BYTES + 6, 1, true); rejects(b, /trailing/);
  });
});

/** Everything a decoded frame claims must hold together (what a caller relies on after decode returns). */
function checkConsistent(f: DecodedFrame, frameBytes: number): void {
  if (f.kind === 'request') {
    const n = f.nTok * f.hidden;
    expect(f.tokens.length).toBe(f.experts.length);
    expect(f.weights.length).toBe(f.tokens.length);
    for (let i = 0; i < f.tokens.length; i++) {
      expect(f.tokens[i]).toBeLessThan(f.nTok);
      expect(Number.isFinite(f.weights[i])).toBe(true);
    }
    const a = f.activations;
    if (a.dtype === 'q8_0') expect([a.qs.length, a.d.length]).toEqual([n, n / QK]);
    else expect(a.data.length).toBe(n);
  } else if (f.kind === 'result') {
    expect(f.values.length).toBe(f.count * f.hidden);
    expect(f.values.byteLength).toBeLessThanOrEqual(2 * frameBytes); // f16 widened at most
  } else if (f.kind === 'head') {
    expect(f.op === 'embed' ? f.tokens.length : f.rows.length).toBe(f.op === 'embed' ? f.n : f.n * f.hidden);
  } else {
    expect(f.status).toBeGreaterThanOrEqual(400);
  }
}

describe('fuzz: decode returns a consistent frame or throws WireError', () => {
  it('survives 4000 mutated, truncated and random frames', () => {
    const rng = new Rng(4);
    const kinds: (() => Uint8Array)[] = [
      () => encodeRequest(makeRequest(rng, (['f32', 'f16', 'q8_0'] as const)[rng.int(3)], (['f32', 'f16'] as const)[rng.int(2)], rng.next() < 0.5)),
      () => {
        const count = rng.int(4);
        return encodeResult({ requestId: rng.int(1000), modelTag: TAG, combine: rng.next() < 0.5, dtype: rng.next() < 0.5 ? 'f32' : 'f16', count, hidden: 32, values: rng.floats(count * 32) });
      },
      () => encodeError({ requestId: rng.int(1000), modelTag: TAG, status: 400 + rng.int(200), code: 'c'.repeat(rng.int(9)), message: 'm'.repeat(rng.int(40)) }),
    ];
    const lengthFields = [20, HEADER_BYTES + 4, HEADER_BYTES + 8, HEADER_BYTES + 12]; // payloadBytes, hidden/count, nTok/hidden, nPairs
    let decoded = 0;
    let refused = 0;
    for (let i = 0; i < 4000; i++) {
      let b = kinds[rng.int(kinds.length)]();
      switch (rng.int(6)) {
        case 0: b = b.subarray(0, rng.int(b.length)); break; // truncation
        case 1: for (let k = 1 + rng.int(4); k > 0; k--) b[rng.int(b.length)] ^= 1 << rng.int(8); break; // bit flips
        case 2: { // a lying length or count
          const at = lengthFields[rng.int(lengthFields.length)];
          if (at + 4 <= b.length) new DataView(b.buffer, b.byteOffset).setUint32(at, [0, 1, 0xffffffff, 0x80000000, rng.int(2 ** 32)][rng.int(5)], true);
          break;
        }
        case 3: b = Uint8Array.from({ length: rng.int(200) }, () => rng.int(256)); break; // noise
        case 4: { // noise behind a valid-looking header
          const noise = Uint8Array.from({ length: rng.int(100) }, () => rng.int(256));
          const h = b.slice(0, HEADER_BYTES);
          if (h.length === HEADER_BYTES) new DataView(h.buffer).setUint32(20, noise.length, true);
          b = new Uint8Array([...h, ...noise]);
          break;
        }
        default: b = new Uint8Array([...b, ...Array.from({ length: 1 + rng.int(8) }, () => rng.int(256))]); // trailing bytes
      }
      try {
        checkConsistent(decodeFrame(b), b.length);
        decoded++;
      } catch (e) {
        if (!(e instanceof WireError)) throw e;
        expect(e.status).toBe(400);
        refused++;
      }
    }
    expect(decoded).toBeGreaterThan(100); // bit flips in values still decode
    expect(refused).toBeGreaterThan(2000);
  });

  it('huge counts are refused before anything is allocated', () => {
    const b = encodeRequest(makeRequest(new Rng(5), 'f32', 'f32', false, 1, 32));
    const v = new DataView(b.buffer);
    v.setUint32(HEADER_BYTES + 4, 0xffffffff, true);
    v.setUint32(HEADER_BYTES + 8, 0xffffffff, true);
    v.setUint32(HEADER_BYTES + 12, 0xffffffff, true);
    expect(() => decodeFrame(b)).toThrow(WireError);
    expect(MAX_PAYLOAD_BYTES + HEADER_BYTES).toBe(32 * 1024 * 1024);
  });
});

describe('checkResultFor', () => {
  it('accepts the answer to a request and refuses answers to another id, tag, mode or shape', () => {
    const req = { ...makeRequest(new Rng(6), 'f32', 'f32', false, 2, 32), tokens: [0, 1, 1], experts: [1, 2, 3], weights: [1, 1, 1] };
    const ok = { kind: 'result' as const, requestId: req.requestId, modelTag: TAG, combine: false, dtype: 'f32' as const, count: 3, hidden: 32, values: new Float32Array(96) };
    expect(() => checkResultFor(req, ok)).not.toThrow();
    for (const bad of [{ requestId: req.requestId + 1 }, { modelTag: new Uint8Array(8) }, { combine: true }, { count: 2 }, { hidden: 64 }]) {
      let err: unknown;
      try { checkResultFor(req, { ...ok, ...bad }); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(WireError);
      expect((err as WireError).status).toBe(502);
    }
    expect(() => checkResultFor({ ...req, combine: true }, { ...ok, combine: true, count: 2, values: new Float32Array(64) })).not.toThrow();
  });
});

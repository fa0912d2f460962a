// Fuzz of the GPU backend's binary protocol against the real backend process (cpu device, models/default) on
// loopback, over HTTP and WebSocket: mutated valid frames, valid headers over random payloads, requests with
// out-of-range fields, frames of the wrong kind, random bytes and text. Every input gets exactly one
// answer: a result frame (200) or an error frame with a 4xx status (HTTP status and frame agree); never a
// 5xx, never a dropped session; a valid call right after is answered exactly; the process stays up.
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type BackendProcess } from '../../../tools/dev/backend';
import { encodeActivations } from '../../../src/protocol/activations';
import {
  decodeFrame, encodeError, encodeRequest, encodeResult, HEADER_BYTES, type DecodedFrame, type ExpertRequest,
} from '../../../src/protocol/expert-wire';
import { modelTagOf } from '../../../src/format/digest';
import { fuzzParams, fuzzRuns, fuzzTimeout, mutatedBytes } from '../../helpers/fuzz';

const TOKEN = 'fuzz-backend-token';
let backend: BackendProcess;
let tag: Uint8Array;
let H = 0;
let L = 0;
let E = 0;
const auth = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  const manifestBytes = new Uint8Array(await readFile('models/default/manifest.json'));
  const a = JSON.parse(new TextDecoder().decode(manifestBytes)).architecture;
  [H, L, E] = [a.hiddenSize, a.numLayers, a.numExperts];
  tag = await modelTagOf(manifestBytes);
  backend = await startBackend({ model: 'models/default', args: ['--threads', '1'], token: TOKEN });
}, 60_000);
afterAll(async () => {
  await backend?.stop();
});

let nextId = 1;
function request(o: { layer?: number; nTok?: number; experts?: number[]; act?: 'f32' | 'f16' | 'q8_0'; combine?: boolean; hidden?: number }): ExpertRequest {
  const nTok = o.nTok ?? 1;
  const hidden = o.hidden ?? H;
  const experts = o.experts ?? [0, 1];
  const tokens = experts.map((_, i) => i % nTok);
  return {
    requestId: nextId++, modelTag: tag, combine: o.combine ?? false, layer: o.layer ?? 0, hidden, nTok,
    tokens, experts, weights: experts.map(() => 0.5),
    activations: encodeActivations(Float32Array.from({ length: nTok * hidden }, (_, i) => Math.sin(i)), o.act ?? 'q8_0'),
    resultDType: 'f32',
  };
}

/** Frames: mostly broken versions of valid ones, so decoding gets past the header. */
function frames(): fc.Arbitrary<{ bytes: Uint8Array; kind: string }> {
  const valid = fc
    .record({
      layer: fc.oneof(fc.nat({ max: L - 1 }), fc.constantFrom(L, 65535)),
      nTok: fc.integer({ min: 1, max: 4 }),
      experts: fc.array(fc.oneof(fc.nat({ max: E - 1 }), fc.constantFrom(E, 65535)), { maxLength: 6 }),
      act: fc.constantFrom<'f32' | 'f16' | 'q8_0'>('f32', 'f16', 'q8_0'),
      combine: fc.boolean(),
      hidden: fc.oneof({ weight: 5, arbitrary: fc.constant(H) }, { weight: 1, arbitrary: fc.constantFrom(32, 96, 128) }),
    })
    .map((o) => encodeRequest(request(o)));
  const u32At = (b: Uint8Array, at: number, v: number) => {
    const c = b.slice();
    if (at + 4 <= c.length) new DataView(c.buffer).setUint32(at, v >>> 0, true);
    return c;
  };
  const otherKinds = fc.constantFrom(
    encodeResult({ requestId: 9, modelTag: tag, combine: false, dtype: 'f32', count: 1, hidden: H, values: new Float32Array(H) }),
    encodeError({ requestId: 9, modelTag: tag, status: 400, code: 'x', message: 'an error frame sent as a call' }),
  );
  return fc.oneof(
    { weight: 6, arbitrary: valid.chain((b) => mutatedBytes(b)).map((bytes) => ({ bytes, kind: 'mutated' })) },
    { weight: 2, arbitrary: valid.map((bytes) => ({ bytes, kind: 'odd-fields' })) },
    {
      weight: 2,
      // a field of the header or request head set to anything (counts, sizes, dtypes, payload length)
      arbitrary: fc.tuple(valid, fc.constantFrom(8, 20, HEADER_BYTES, HEADER_BYTES + 4, HEADER_BYTES + 8, HEADER_BYTES + 12), fc.oneof(fc.nat(), fc.constantFrom(0, 0xffffffff, 0x7fffffff, 1 << 24)))
        .map(([b, at, v]) => ({ bytes: u32At(b, at, v), kind: 'lying-fields' })),
    },
    { weight: 1, arbitrary: fc.tuple(valid, fc.uint8Array({ maxLength: 256 })).map(([b, p]) => ({ bytes: new Uint8Array([...b.subarray(0, HEADER_BYTES), ...p]), kind: 'random-payload' })) },
    { weight: 1, arbitrary: otherKinds.map((bytes) => ({ bytes, kind: 'wrong-kind' })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 128 }).map((bytes) => ({ bytes, kind: 'random-bytes' })) },
  );
}

/** The answer must be a result, or an error frame whose status is a 4xx (and equals the HTTP status). */
function checkAnswer(f: DecodedFrame, httpStatus?: number): 'result' | 'error' {
  if (f.kind === 'result') {
    if (httpStatus !== undefined && httpStatus !== 200) throw new Error(`result frame with HTTP ${httpStatus}`);
    return 'result';
  }
  if (f.kind !== 'error') throw new Error(`the backend answered a ${f.kind} frame`);
  if (f.status < 400 || f.status >= 500) throw new Error(`error frame ${f.status} ${f.code}: ${f.message}`);
  if (httpStatus !== undefined && httpStatus !== f.status) throw new Error(`HTTP ${httpStatus} carries an error frame of status ${f.status}`);
  return 'error';
}

async function post(body: Uint8Array): Promise<{ status: number; frame: DecodedFrame }> {
  const res = await fetch(`${backend.url}/v1/experts`, { method: 'POST', headers: auth, body: body as Uint8Array<ArrayBuffer>, signal: AbortSignal.timeout(20_000) });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (res.status >= 500) throw new Error(`HTTP ${res.status} for a client's frame`);
  return { status: res.status, frame: decodeFrame(bytes) };
}

async function expectValidCallWorks(): Promise<void> {
  const req = request({ nTok: 2, experts: [0, E - 1, 3] });
  const { status, frame } = await post(encodeRequest(req));
  if (status !== 200 || frame.kind !== 'result' || frame.requestId !== req.requestId || frame.count !== 3 || frame.hidden !== H) {
    throw new Error(`a valid call after the fuzzed one got ${status} ${frame.kind}`);
  }
}

describe('backend protocol fuzz (real process)', () => {
  it(`${fuzzRuns(300)} frames over HTTP: a result or a 4xx error frame each, and a valid call right after works`, async () => {
    const seen = { result: 0, error: 0 };
    await fc.assert(
      fc.asyncProperty(frames(), async ({ bytes }) => {
        const { status, frame } = await post(bytes);
        seen[checkAnswer(frame, status)]++;
        await expectValidCallWorks();
      }),
      fuzzParams(300),
    );
    expect(seen.error).toBeGreaterThan(0);
    expect(seen.result).toBeGreaterThan(0);
  }, fuzzTimeout(300, 50));

  it(`${fuzzRuns(300)} frames and text messages on one WebSocket: one answer each, in order, and the session survives`, async () => {
    const ws = new WebSocket(`${backend.url.replace('http', 'ws')}/v1/experts/ws`, { headers: auth } as unknown as string[]);
    ws.binaryType = 'arraybuffer';
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error('websocket refused'));
    });
    let closed: string | null = null;
    ws.onclose = (e) => (closed = `closed ${e.code} ${e.reason}`);
    const replies: ((f: DecodedFrame) => void)[] = [];
    ws.onmessage = (ev) => replies.shift()?.(decodeFrame(new Uint8Array(ev.data as ArrayBuffer)));
    const call = (m: Uint8Array | string) =>
      new Promise<DecodedFrame>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(closed ?? 'no answer within 20 s')), 20_000);
        replies.push((f) => {
          clearTimeout(timer);
          resolve(f);
        });
        ws.send(m as Uint8Array<ArrayBuffer>);
      });
    const message = fc.oneof({ weight: 9, arbitrary: frames().map((f) => f.bytes as Uint8Array | string) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) });
    const seen = { result: 0, error: 0 };
    await fc.assert(
      fc.asyncProperty(message, async (m) => {
        seen[checkAnswer(await call(m))]++;
        const req = request({ nTok: 1, experts: [2] });
        const f = await call(encodeRequest(req));
        if (f.kind !== 'result' || f.requestId !== req.requestId) throw new Error(`a valid call on the same session got ${f.kind}`);
      }),
      fuzzParams(300),
    );
    expect(closed).toBeNull();
    expect(seen.error).toBeGreaterThan(0);
    ws.close();
  }, fuzzTimeout(300, 50));

  it('the process is still up, healthy, and counted the refusals in /metrics', async () => {
    expect(backend.process.exitCode).toBeNull();
    const health = await fetch(`${backend.url}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`${backend.url}/metrics`, { headers: auth })).text();
    expect(metrics).toMatch(/moe_backend_errors_total\{code="bad_frame"\} [1-9]/);
    expect(metrics).not.toMatch(/moe_backend_errors_total\{code="internal"\}/);
  });
});

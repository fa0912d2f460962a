// The GPU backend as a real process on loopback (cpu device, a tiny converted model): results bit for bit equal to the
// Worker's own WASM kernels over HTTP and WebSocket, batched or not; COMBINE; auth on every protected route;
// garbage, unknown experts, wrong model and out-of-range experts refused while the server keeps serving.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTextModel, type LocalModel } from '../../../src/engine/load';
import { fsSource } from '../../../src/store/source-fs';
import { roundF16 } from '../../../src/format/quant';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { encodeActivations, type ActDType } from '../../../src/protocol/activations';
import {
  decodeError, decodeFrame, decodeResult, encodeRequest, type DecodedError, type DecodedResult, type ExpertRequest,
} from '../../../src/protocol/expert-wire';
import { modelTagOf } from '../../../src/format/digest';
import { startBackend, type BackendProcess } from '../../../tools/dev/backend';
import { Rng } from '../../unit/kernels/rng';
import { tinyModelDir } from '../../helpers/tiny-model';

let MODEL: string; // tiny fixed shapes: hidden 64, 2 layers, 8 experts
const TOKEN = 'backend-test-token';
let full: BackendProcess;
let half: BackendProcess; // --experts 0-3
let local: LocalModel;
let tag: Uint8Array;
let H: number;
const auth = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  MODEL = await tinyModelDir();
  [full, half, local, tag] = await Promise.all([
    startBackend({ model: MODEL, args: ['--threads', '2'], token: TOKEN }),
    startBackend({ model: MODEL, args: ['--threads', '1', '--experts', '0-3'], token: TOKEN }),
    loadNodeKernels().then((k) => loadTextModel(fsSource(MODEL), k)),
    readFile(`${MODEL}/manifest.json`).then((b) => modelTagOf(new Uint8Array(b))),
  ]);
  H = local.manifest.architecture.hiddenSize;
}, 60_000);
afterAll(async () => {
  await Promise.all([full?.stop(), half?.stop()]);
});

/** What the Worker computes for expert (layer, e) on x (n, H): its own WASM kernels, in its own heap. */
function reference(layer: number, e: number, x: Float32Array): Float32Array {
  const k = local.kernels;
  const w = local.weights.experts[layer][e]!;
  const n = x.length / H;
  const xp = k.heap.alloc(x.length * 4);
  const yp = k.heap.alloc(x.length * 4);
  try {
    k.heap.f32(xp, x.length).set(x);
    k.ffnSwiglu(w.gate, w.up, w.down, xp, yp, n);
    return k.heap.f32(yp, x.length).slice();
  } finally {
    k.heap.release(yp);
    k.heap.release(xp);
  }
}

interface Call { req: ExpertRequest; x: Float32Array; bytes: Uint8Array }

let nextId = 1;
function makeCall(rng: Rng, opts: { layer?: number; nTok?: number; experts?: number[]; act?: ActDType; combine?: boolean; modelTag?: Uint8Array } = {}): Call {
  const nTok = opts.nTok ?? 1 + rng.int(4);
  const x = rng.floats(nTok * H, 2);
  const tokens: number[] = [];
  const experts: number[] = [];
  const weights: number[] = [];
  for (let t = 0; t < nTok; t++) {
    for (const e of opts.experts ?? [rng.int(8), rng.int(8)]) { tokens.push(t); experts.push(e); weights.push(Math.fround(rng.next())); }
  }
  const req: ExpertRequest = {
    requestId: nextId++, modelTag: opts.modelTag ?? tag, combine: opts.combine ?? false, layer: opts.layer ?? rng.int(2), hidden: H, nTok,
    tokens, experts, weights, activations: encodeActivations(x, opts.act ?? 'q8_0'), resultDType: 'f32',
  };
  return { req, x, bytes: encodeRequest(req) };
}

/** Expected rows (nPairs, H): the local kernel on the f32 x (q8_0: the kernel quantizes x to the very blocks sent). */
function expected(c: Call): Float32Array {
  const { req } = c;
  const x = req.activations.dtype === 'f16' ? c.x.map(roundF16) : c.x;
  const out = new Float32Array(req.tokens.length * H);
  for (let i = 0; i < req.tokens.length; i++) {
    const t = req.tokens[i];
    out.set(reference(req.layer, req.experts[i], x.subarray(t * H, t * H + H)), i * H);
  }
  if (!req.combine) return out;
  const y = new Float32Array(req.nTok * H);
  for (let i = 0; i < req.tokens.length; i++) {
    for (let j = 0; j < H; j++) {
      const o = req.tokens[i] * H + j;
      y[o] = Math.fround(y[o] + Math.fround(req.weights[i] * out[i * H + j]));
    }
  }
  return y;
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function expectExact(c: Call, res: DecodedResult): void {
  expect(res.requestId).toBe(c.req.requestId);
  expect(res.count).toBe(c.req.combine ? c.req.nTok : c.req.tokens.length);
  expect(bits(res.values)).toEqual(bits(expected(c)));
}

async function post(b: BackendProcess, body: Uint8Array, headers: Record<string, string> = auth): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await fetch(`${b.url}/v1/experts`, { method: 'POST', headers, body: body as Uint8Array<ArrayBuffer> });
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** A WebSocket session; replies are matched by requestId as the Worker does. */
async function openWs(b: BackendProcess, headers: Record<string, string> = auth) {
  const ws = new WebSocket(`${b.url.replace('http', 'ws')}/v1/experts/ws`, { headers } as unknown as string[]);
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('websocket refused'));
  });
  const waiting = new Map<number, (f: DecodedResult | DecodedError) => void>();
  const anonymous: ((f: DecodedResult | DecodedError) => void)[] = []; // replies to frames without a readable id
  const received: number[] = [];
  ws.onmessage = (ev) => {
    const f = decodeFrame(new Uint8Array(ev.data as ArrayBuffer));
    if (f.kind === 'request' || f.kind === 'head') throw new Error(`server sent a ${f.kind} frame`);
    received.push(f.requestId);
    const w = waiting.get(f.requestId) ?? anonymous.shift();
    waiting.delete(f.requestId);
    w?.(f);
  };
  return {
    received,
    call(bytes: Uint8Array | string, id?: number): Promise<DecodedResult | DecodedError> {
      return new Promise((resolve) => {
        if (id === undefined) anonymous.push(resolve); else waiting.set(id, resolve);
        ws.send(bytes as Uint8Array<ArrayBuffer>);
      });
    },
    close: () => ws.close(),
  };
}

async function metric(b: BackendProcess, name: string): Promise<number> {
  const text = await (await fetch(`${b.url}/metrics`, { headers: auth })).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('gpu-backend: exact results', () => {
  it('POST: q8_0, f32 and f16 activations give exactly what the Worker computes locally', async () => {
    const rng = new Rng(10);
    for (const act of ['q8_0', 'f32', 'f16'] as const) {
      for (const layer of [0, 1]) {
        const c = makeCall(rng, { layer, act, nTok: 5, experts: [0, 7] });
        const r = await post(full, c.bytes);
        expect(r.status).toBe(200);
        expectExact(c, decodeResult(r.bytes));
      }
    }
  });

  it('POST: COMBINE returns per-token weighted sums in f32, and f16 results are the f32 ones rounded', async () => {
    const rng = new Rng(11);
    const c = makeCall(rng, { combine: true, nTok: 3 });
    expectExact(c, decodeResult((await post(full, c.bytes)).bytes));
    const plain = makeCall(rng, { nTok: 2 });
    const f16 = { ...plain.req, resultDType: 'f16' as const };
    const got = decodeResult((await post(full, encodeRequest(f16))).bytes);
    expect(got.dtype).toBe('f16');
    expect(Array.from(got.values)).toEqual(Array.from(expected(plain)).map(roundF16));
  });

  it('WebSocket: a session of calls, all exact', async () => {
    const ws = await openWs(full);
    const rng = new Rng(12);
    for (let i = 0; i < 4; i++) {
      const c = makeCall(rng, { act: i % 2 ? 'f32' : 'q8_0' });
      const f = await ws.call(c.bytes, c.req.requestId);
      expect(f.kind).toBe('result');
      expectExact(c, f as DecodedResult);
    }
    ws.close();
  });

  it('concurrent calls (16 POSTs and 32 frames on one socket at once) are batched and stay exact', async () => {
    const rng = new Rng(13);
    const batchesBefore = await metric(full, 'moe_backend_batches_total');
    const callsBefore = await metric(full, 'moe_backend_batched_calls_total');
    const posts = Array.from({ length: 16 }, () => makeCall(rng, { nTok: 1 + rng.int(8) }));
    const results = await Promise.all(posts.map((c) => post(full, c.bytes)));
    results.forEach((r, i) => expectExact(posts[i], decodeResult(r.bytes)));

    const ws = await openWs(full);
    const frames = Array.from({ length: 32 }, () => makeCall(rng, { combine: rng.next() < 0.5 }));
    const replies = await Promise.all(frames.map((c) => ws.call(c.bytes, c.req.requestId)));
    replies.forEach((f, i) => expectExact(frames[i], f as DecodedResult));
    expect(ws.received).toEqual(frames.map((c) => c.req.requestId)); // answered in arrival order
    ws.close();

    const batches = (await metric(full, 'moe_backend_batches_total')) - batchesBefore;
    const calls = (await metric(full, 'moe_backend_batched_calls_total')) - callsBefore;
    expect(calls).toBe(48);
    expect(batches).toBeLessThan(calls); // some calls shared a device batch
  });
});

describe('gpu-backend: auth', () => {
  const wrong = { authorization: 'Bearer nope' };

  it('healthz is open and describes the replica', async () => {
    const h = (await (await fetch(`${full.url}/healthz`)).json()) as { residentBytes: number };
    expect(h).toMatchObject({ status: 'ok', model: 'tiny', device: 'cpu', layers: [0, 1], experts: [0, 7], loadedExperts: 16, protocol: 1 });
    expect(h.residentBytes).toBeGreaterThan(0);
    expect(((await (await fetch(`${half.url}/healthz`)).json()) as { experts: number[] }).experts).toEqual([0, 3]);
  });

  it('POST /v1/experts and GET /metrics answer 401 without the right token, and work with it', async () => {
    const c = makeCall(new Rng(14));
    for (const headers of [{}, wrong, { authorization: TOKEN }]) {
      const r = await post(full, c.bytes, headers);
      expect(r.status).toBe(401);
      expect(decodeError(r.bytes).code).toBe('unauthorized');
      expect((await fetch(`${full.url}/metrics`, { headers })).status).toBe(401);
    }
    expect((await post(full, c.bytes)).status).toBe(200);
    const m = await fetch(`${full.url}/metrics`, { headers: auth });
    expect(m.status).toBe(200);
    expect(await m.text()).toMatch(/moe_backend_errors_total\{code="unauthorized"\} [1-9]/);
  });

  it('refuses the WebSocket upgrade without the right token', async () => {
    await expect(openWs(full, {})).rejects.toThrow(/refused/);
    await expect(openWs(full, wrong)).rejects.toThrow(/refused/);
    const ok = await openWs(full);
    ok.close();
  });
});

describe('gpu-backend: refusals', () => {
  it('garbage on HTTP gets a 400 error frame (oversized: 413) and the server keeps serving', async () => {
    const rng = new Rng(15);
    for (const body of [new Uint8Array(0), Uint8Array.from({ length: 100 }, () => rng.int(256)), makeCall(rng).bytes.subarray(0, 50)]) {
      const r = await post(full, body);
      expect(r.status).toBe(400);
      expect(decodeError(r.bytes).code).toBe('bad_frame');
    }
    const big = await post(full, new Uint8Array(32 * 1024 * 1024 + 1));
    expect([big.status, decodeError(big.bytes).code]).toEqual([413, 'frame_too_large']);
    const c = makeCall(rng);
    expectExact(c, decodeResult((await post(full, c.bytes)).bytes));
  });

  it('garbage on a WebSocket gets error frames and the session goes on', async () => {
    const rng = new Rng(16);
    const ws = await openWs(full);
    const text = await ws.call('hello');
    expect([text.kind, (text as DecodedError).status]).toEqual(['error', 400]);
    const noise = await ws.call(Uint8Array.from({ length: 64 }, () => rng.int(256)));
    expect((noise as DecodedError).code).toBe('bad_frame');
    const broken = makeCall(rng);
    const bytes = broken.bytes.slice(0, broken.bytes.length - 1); // header readable, payload short: error keeps the id
    const e = await ws.call(bytes, broken.req.requestId);
    expect([e.kind, (e as DecodedError).code]).toEqual(['error', 'bad_frame']);
    const c = makeCall(rng);
    expectExact(c, (await ws.call(c.bytes, c.req.requestId)) as DecodedResult);
    ws.close();
  });

  it('unknown layer or expert -> 404, another model -> 409, wrong hidden size -> 400', async () => {
    const rng = new Rng(17);
    const cases: [Call, number, string][] = [
      [makeCall(rng, { experts: [1, 8] }), 404, 'unknown_expert'],
      [makeCall(rng, { layer: 2 }), 404, 'unknown_layer'],
      [makeCall(rng, { modelTag: new Uint8Array(8).fill(7) }), 409, 'model_mismatch'],
    ];
    const x = new Float32Array(32);
    const narrow: ExpertRequest = { ...makeCall(rng).req, hidden: 32, nTok: 1, tokens: [0], experts: [0], weights: [1], activations: encodeActivations(x, 'f32') };
    cases.push([{ req: narrow, x, bytes: encodeRequest(narrow) }, 400, 'shape_mismatch']);
    for (const [c, status, code] of cases) {
      const r = await post(full, c.bytes);
      expect(r.status).toBe(status);
      const e = decodeError(r.bytes);
      expect([e.status, e.code, e.requestId]).toEqual([status, code, c.req.requestId]);
    }
    const ws = await openWs(full);
    const c = cases[2][0];
    expect(((await ws.call(c.bytes, c.req.requestId)) as DecodedError).code).toBe('model_mismatch');
    ws.close();
  });

  it('a replica with --experts 0-3 refuses expert 5 and serves expert 2 exactly', async () => {
    const rng = new Rng(18);
    const r = await post(half, makeCall(rng, { experts: [2, 5] }).bytes);
    expect(r.status).toBe(404);
    expect(decodeError(r.bytes).code).toBe('expert_not_served');
    const ok = makeCall(rng, { experts: [2, 3], nTok: 3 });
    expectExact(ok, decodeResult((await post(half, ok.bytes)).bytes));
  });

  it('counts calls, pairs and errors by code in /metrics', async () => {
    expect(await metric(full, 'moe_backend_calls_total{transport="http"}')).toBeGreaterThan(20);
    expect(await metric(full, 'moe_backend_calls_total{transport="ws"}')).toBeGreaterThan(30);
    expect(await metric(full, 'moe_backend_pairs_total')).toBeGreaterThan(50);
    expect(await metric(full, 'moe_backend_errors_total{code="bad_frame"}')).toBeGreaterThanOrEqual(6);
    expect(await metric(full, 'moe_backend_errors_total{code="model_mismatch"}')).toBe(2);
    expect(await metric(full, 'moe_backend_compute_seconds_total')).toBeGreaterThan(0);
    expect(full.process.exitCode).toBeNull(); // still alive after everything above
  });
});

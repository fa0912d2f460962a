// A misbehaving GPU backend: down from the start, killed mid-generation, late, answering garbage or frames
// of the wrong shape, refusing our token. Each generation completes under DEGRADED_POLICY (flagged in
// x-moe-degraded, usage.moe.degraded and /metrics) or fails with a clear 502/504 when it is `error`;
// nothing hangs, and the next request is served normally on a new connection.
// The faults come from tools/dev/fault-proxy.ts (mode in BACKEND_URL's path) and a backend process
// that the proxy SIGKILLs (global-setup.ts).
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { BACKEND_ERROR_CODES } from '../../src/remote/errors';
import { callWithEnv, expectOpenAIError, MODEL, readSse } from './helpers';

const backend = inject('backend');
// the backend fails after this many replies: the prefill's (one per layer) and a few decode steps
let midGeneration = 0;
beforeAll(async () => {
  const manifest = JSON.parse(await (await env.MODELS.get(`${env.MODEL_PREFIX}/${MODEL}/manifest.json`))!.text());
  midGeneration = manifest.architecture.numLayers * 4;
});
// every expert cold: every layer of every token goes to the backend, so a fault cannot be missed
const COLD = { HOT_EXPERTS: 'none', BACKEND_TIMEOUT_MS: '500' };

function complete(vars: Record<string, string>, extra: Record<string, unknown> = {}): Promise<Response> {
  return callWithEnv({ ...COLD, ...vars }, '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ...extra }),
  });
}

/** The next request on a healthy backend works: new WebSocket, nothing degraded. */
async function expectServesNext(): Promise<void> {
  const res = await complete({});
  expect(res.status).toBe(200);
  expect(res.headers.get('x-moe-degraded')).toBeNull();
  const body = (await res.json()) as any;
  expect(body.usage.moe).toMatchObject({ degraded: null, policy: 'remote', hot_hits: 0 });
  expect(body.usage.moe.cold_calls).toBeGreaterThan(0);
}

async function expectDegraded(res: Response, reason: string, policy = 'remote'): Promise<any> {
  expect(res.status).toBe(200);
  expect(res.headers.get('x-moe-degraded')).toBe(reason);
  const body = (await res.json()) as any;
  expect(body.choices[0].finish_reason).toMatch(/^(stop|length)$/);
  expect(body.usage.moe).toMatchObject({ degraded: reason, policy });
  return body;
}

/** Raw SSE frames: the JSON events, and whether the stream ended with [DONE]. */
async function sseEvents(res: Response): Promise<{ events: any[]; done: boolean }> {
  expect(res.status).toBe(200);
  const frames = (await res.text()).split('\n\n').filter((f) => f.length > 0);
  const done = frames.at(-1) === 'data: [DONE]';
  return { events: (done ? frames.slice(0, -1) : frames).map((f) => JSON.parse(f.slice('data: '.length))), done };
}

const faults: { name: string; url: string; reason: keyof typeof BACKEND_ERROR_CODES; status: 502 | 504; token?: string }[] = [
  { name: 'down from the start', url: backend.deadUrl, reason: 'unavailable', status: 502 },
  { name: 'answering late', url: `${backend.proxyUrl}/delay/3000`, reason: 'timeout', status: 504 },
  { name: 'never answering', url: `${backend.proxyUrl}/stall`, reason: 'timeout', status: 504 },
  { name: 'answering garbage', url: `${backend.proxyUrl}/garbage`, reason: 'protocol', status: 502 },
  { name: 'answering the wrong shape', url: `${backend.proxyUrl}/wrong-shape`, reason: 'protocol', status: 502 },
  { name: 'refusing our token', url: backend.url, token: 'not-the-token', reason: 'unauthorized', status: 502 },
];

describe.each(faults)('backend $name', ({ url, token, reason, status }) => {
  const vars = { BACKEND_URL: url, ...(token ? { BACKEND_TOKEN: token } : {}) };

  it.each(['substitute', 'drop'])(`DEGRADED_POLICY=%s: completes, flagged ${reason}`, async (policy) => {
    await expectDegraded(await complete({ ...vars, DEGRADED_POLICY: policy }), reason);
    await expectServesNext();
  });

  it(`DEGRADED_POLICY=error: ${status} before any output`, async () => {
    const e = await expectOpenAIError(await complete({ ...vars, DEGRADED_POLICY: 'error' }), status, { type: 'server_error', code: BACKEND_ERROR_CODES[reason] });
    expect(e.message).toMatch(/^GPU backend: /);
    const streamed = await complete({ ...vars, DEGRADED_POLICY: 'error' }, { stream: true });
    await expectOpenAIError(streamed, status, { code: BACKEND_ERROR_CODES[reason] });
    await expectServesNext();
  });

  it('streams: x-moe-degraded from the start, and in the final usage chunk', async () => {
    const res = await complete({ ...vars, DEGRADED_POLICY: 'substitute' }, { stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get('x-moe-degraded')).toBe(reason);
    const events = await readSse(res);
    expect(events.at(-1).usage.moe).toMatchObject({ degraded: reason });
    await expectServesNext();
  });
});

describe('backend dying mid-generation', () => {
  it('connection dropped after a few replies: the stream completes under drop, degraded shows in its usage', async () => {
    // the drop comes during decoding, after the headers went out
    const res = await complete({ BACKEND_URL: `${backend.proxyUrl}/close-after/${midGeneration}`, DEGRADED_POLICY: 'drop' }, { stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get('x-moe-degraded')).toBeNull();
    const events = await readSse(res);
    const usage = events.at(-1).usage;
    expect(usage.completion_tokens).toBeGreaterThan(3);
    expect(usage.moe).toMatchObject({ degraded: 'unavailable', policy: 'remote' });
    await expectServesNext();
  });

  it('DEGRADED_POLICY=error mid-stream: an in-band error event ends the stream', async () => {
    const res = await complete({ BACKEND_URL: `${backend.proxyUrl}/close-after/${midGeneration}`, DEGRADED_POLICY: 'error' }, { stream: true });
    const { events, done } = await sseEvents(res);
    expect(done).toBe(false);
    expect(events.at(-1)).toEqual({ error: expect.objectContaining({ code: 'backend_unavailable', type: 'server_error' }) });
    expect(events.length).toBeGreaterThan(1); // some text went out before the failure
    await expectServesNext();
  });

  it('a backend process killed (SIGKILL) mid-generation: completes under substitute; later calls find it down', async () => {
    const res = await complete({ BACKEND_URL: `${backend.proxyUrl}/kill-after/${midGeneration}`, DEGRADED_POLICY: 'substitute' }, { stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get('x-moe-degraded')).toBeNull();
    const events = await readSse(res);
    expect(events.at(-1).usage.moe.degraded).toMatch(/^(unavailable|timeout)$/);
    await expectServesNext();
    // the victim stays dead: the next generation sent there degrades at once
    await expectDegraded(await complete({ BACKEND_URL: `${backend.proxyUrl}/kill-after/${midGeneration}`, DEGRADED_POLICY: 'substitute' }), 'unavailable');
    await expectServesNext();
  });
});

describe('degraded generations in /metrics', () => {
  it('counts them by reason, with hot hits and cold calls', async () => {
    await complete({ BACKEND_URL: `${backend.proxyUrl}/garbage`, DEGRADED_POLICY: 'drop' });
    const res = await callWithEnv({}, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('moe_degraded_total{reason="protocol"}')).toBeGreaterThanOrEqual(1);
    expect(value('moe_cold_calls_total')).toBeGreaterThan(0);
    expect(value('moe_tokens_total{kind="completion"}')).toBeGreaterThan(0);
    expect(value('moe_requests_total{route="/v1/completions",status="200"}')).toBeGreaterThan(0);
  });
});

// Expert parallelism in workerd: BACKENDS maps experts 0-3 and 4-7 of every layer to two real backend
// replicas (each loaded only its half). With policy remote the logits and greedy text are identical to one
// backend serving everything; a generation connects only to the replicas its cold experts live on; a
// BACKENDS that leaves an expert without exactly one owner is a clear 500 config error.
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import type { MoeOptions } from '../../src/engine/api';
import { forward, Sequence } from '../../src/engine/forward';
import { appConfig } from '../../src/config/env';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { maxAbsDiff } from '../helpers/logits';
import { randomHalf, splitLogits } from '../helpers/split-score';
import { callWithEnv, expectOpenAIError, MODEL } from './helpers';

const backend = inject('backend');
const [low, high] = backend.replicas;
const BACKENDS = JSON.stringify([
  { url: low, experts: '0-3' },
  { url: high, experts: '4-7' },
]);
const single: MoeOptions = { policy: 'remote', degradedPolicy: 'error', backend: { url: backend.url, token: backend.token, timeoutMs: 10_000 } };
// through the Worker's own config parsing, as a deployment would set it
const sharded: MoeOptions = { ...single, backend: appConfig({ ...env, BACKEND_URL: '', BACKENDS, BACKEND_TIMEOUT_MS: '10000' }).backend };

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${backend.token}` } })).text();
  return Number(pattern.exec(text)?.[1] ?? NaN);
}
/** WebSocket calls a replica has answered so far. */
const wsCalls = (url: string) => metric(url, /^moe_backend_calls_total\{transport="ws"\} (\d+)$/m);
/** WebSocket sessions open on a replica now. */
const wsSessions = (url: string) => metric(url, /^moe_backend_ws_sessions (\d+)$/m);

async function callsDuring(run: () => Promise<unknown>): Promise<[number, number]> {
  const before = await Promise.all([wsCalls(low), wsCalls(high)]);
  await run();
  const after = await Promise.all([wsCalls(low), wsCalls(high)]);
  return [after[0] - before[0], after[1] - before[1]];
}

describe('BACKENDS: two replicas split the experts', () => {
  it('config: the replicas, one token, the first URL as the tier name', () => {
    expect(sharded.backend).toMatchObject({ url: low, token: backend.token, replicas: [{ url: low, layers: null, experts: { lo: 0, hi: 3 } }, { url: high, layers: null, experts: { lo: 4, hi: 7 } }] });
  });

  it('prefill and decode logits are identical to a single backend, and both replicas are used', async () => {
    const a = (await loadModelFromR2({ ...env, HOT_EXPERTS: 'none' })).manifest.architecture;
    for (const hot of ['none', randomHalf(a.numLayers, a.numExperts, 99)]) {
      const model = await loadModelFromR2({ ...env, HOT_EXPERTS: hot });
      const tokens = model.encode('Once upon a time, the experts of the edge');
      const want = await splitLogits(model, tokens, single, 12);
      let got!: Awaited<ReturnType<typeof splitLogits>>;
      const calls = await callsDuring(async () => (got = await splitLogits(model, tokens, sharded, 12)));
      expect(got.usage.degraded, hot).toBeNull();
      expect(got.usage.cold_calls, hot).toBe(want.usage.cold_calls);
      expect(got.usage.cold_calls, hot).toBeGreaterThan(0);
      expect(maxAbsDiff(got.rows, want.rows), hot).toBe(0);
      expect(calls[0], hot).toBeGreaterThan(0);
      expect(calls[1], hot).toBeGreaterThan(0);
    }
  });

  it('a generation connects only to the replicas that own its cold experts', async () => {
    // experts 4-7 hot in every layer: only the replica of 0-3 can be needed
    const layers = (await loadModelFromR2({ ...env, HOT_EXPERTS: 'none' })).manifest.architecture.numLayers;
    const upperHalf = Object.fromEntries(Array.from({ length: layers }, (_, l) => [l, [4, 5, 6, 7]]));
    const model = await loadModelFromR2({ ...env, HOT_EXPERTS: JSON.stringify({ layers: upperHalf }) });
    const tokens = model.encode('Tell me about experts.');
    const want = await splitLogits(model, tokens, single, 6);
    let got!: Awaited<ReturnType<typeof splitLogits>>;
    const calls = await callsDuring(async () => (got = await splitLogits(model, tokens, sharded, 6)));
    expect(maxAbsDiff(got.rows, want.rows)).toBe(0);
    expect(got.usage.cold_calls).toBeGreaterThan(0);
    expect(calls).toEqual([expect.any(Number), 0]);
    expect(calls[0]).toBeGreaterThan(0);
    // while a generation runs: a socket to the replica of 0-3, none to the other
    const g = model.beginExperts(sharded);
    const seq = new Sequence(model.kernels, g.weights, tokens.length);
    try {
      await forward(model.kernels, seq, g.experts, tokens, { logits: 'last' });
      expect(await wsSessions(low)).toBeGreaterThanOrEqual(1);
      expect(await wsSessions(high)).toBe(0);
    } finally {
      seq.release();
      g.end();
    }
  });

  it('greedy text through the API equals the CLI with BACKENDS set (hot sets none and 50%)', async () => {
    for (const hot of ['none', '50%']) {
      for (const g of inject('greedy')) {
        const body =
          g.kind === 'chat'
            ? { path: '/v1/chat/completions', json: { model: MODEL, messages: [{ role: 'user', content: g.input }], max_tokens: g.maxTokens, temperature: 0 } }
            : { path: '/v1/completions', json: { model: MODEL, prompt: g.input, max_tokens: g.maxTokens, temperature: 0 } };
        const res = await callWithEnv({ HOT_EXPERTS: hot, BACKEND_URL: '', BACKENDS, DEGRADED_POLICY: 'error' }, body.path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body.json),
        });
        expect(res.status, `${hot} ${g.kind}`).toBe(200);
        const whole = (await res.json()) as any;
        expect(g.kind === 'chat' ? whole.choices[0].message.content : whole.choices[0].text, `${hot} ${g.kind}`).toBe(g.text);
        expect(whole.usage.moe).toMatchObject({ policy: 'remote', degraded: null });
        expect(whole.usage.moe.cold_calls).toBeGreaterThan(0);
      }
    }
  });
});

describe('BACKENDS config errors: every route answers 500 invalid_config naming the problem', () => {
  const post = (vars: Record<string, string>) =>
    callWithEnv({ HOT_EXPERTS: 'none', BACKEND_URL: '', ...vars }, '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Hi', max_tokens: 2 }),
    });

  it.each([
    ['not JSON', '[{url: x}]', /not JSON/],
    ['an empty list', '[]', /non-empty JSON array/],
    ['a bad URL', JSON.stringify([{ url: 'gpu-a:8788' }]), /entry 0: "url"/],
    ['a bad range', JSON.stringify([{ url: 'http://a', experts: '3-1' }]), /entry 0: "experts"/],
    ['an unknown key', JSON.stringify([{ url: 'http://a', token: 's' }]), /unknown key "token"/],
    ['overlapping replicas', JSON.stringify([{ url: 'http://a', experts: '0-4' }, { url: 'http://b', experts: '4-7' }]), /entries 0 .* and 1 .* both serve/],
    ['seven replicas', JSON.stringify(Array.from({ length: 7 }, (_, i) => ({ url: `http://r${i}`, layers: String(i) }))), /6 connections/],
  ])('%s', async (_, value, message) => {
    const e = await expectOpenAIError(await post({ BACKENDS: value }), 500, { code: 'invalid_config', type: 'server_error' });
    expect(e.message).toMatch(/^configuration BACKENDS is invalid: /);
    expect(e.message).toMatch(message);
  });

  it('an expert without an owner, or a range past the model, fails once the model is known', async () => {
    let e = await expectOpenAIError(await post({ BACKENDS: JSON.stringify([{ url: low, experts: '0-3' }]) }), 500, { code: 'invalid_config' });
    expect(e.message).toMatch(/no replica serves layer 0 expert 4, layer 0 expert 5, .* and \d+ more \(the model has \d+ layers x 8 experts/);
    e = await expectOpenAIError(await post({ BACKENDS: JSON.stringify([{ url: low, experts: '0-3' }, { url: high, experts: '4-9' }]) }), 500, { code: 'invalid_config' });
    expect(e.message).toMatch(/reaches past the model's experts 0-7/);
  });

  it('BACKEND_URL and BACKENDS together are ambiguous', async () => {
    const e = await expectOpenAIError(await post({ BACKEND_URL: backend.url, BACKENDS }), 500, { code: 'invalid_config' });
    expect(e.message).toMatch(/BACKEND_URL.*empty when BACKENDS is set/);
  });

  it('a replica that is down degrades the generation like a single backend would', async () => {
    const res = await post({ BACKENDS: JSON.stringify([{ url: low, experts: '0-3' }, { url: backend.deadUrl, experts: '4-7' }]), DEGRADED_POLICY: 'substitute' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-moe-degraded')).toBe('unavailable');
    expect(((await res.json()) as any).usage.moe.degraded).toBe('unavailable');
  });
});

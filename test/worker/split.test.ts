// The hot/cold split in workerd with the real GPU backend on loopback: with policy remote the output does
// not depend on the hot set (logits within 1e-4 of the all-local model, identical greedy text), and
// usage.moe says where the experts ran.
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import type { MoeOptions } from '../../src/engine/api';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { maxAbsDiff } from '../helpers/logits';
import { randomHalf, splitLogits } from '../helpers/split-score';
import { callWithEnv, countsOf, MODEL, readSse } from './helpers';

const backend = inject('backend');
const remote: MoeOptions = { policy: 'remote', degradedPolicy: 'error', backend: { url: backend.url, token: backend.token, timeoutMs: 10_000 } };
const reference = loadModelFromR2({ ...env, HOT_EXPERTS: 'all' });

async function hotSets(): Promise<[string, string][]> {
  const a = (await reference).manifest.architecture;
  return [
    ['all', 'all'],
    ['none', 'none'],
    ['random half', randomHalf(a.numLayers, a.numExperts, 4242)],
  ];
}

describe('exactness with policy remote', () => {
  it('logits match the all-local model within 1e-4 for hot sets all, none and a random half', async () => {
    const ref = await reference;
    const tokens = ref.encode('Once upon a time, the experts');
    const want = await splitLogits(ref, tokens, remote, 12);
    expect(want.usage.cold_calls).toBe(0);
    for (const [name, hot] of await hotSets()) {
      const model = await loadModelFromR2({ ...env, HOT_EXPERTS: hot });
      const got = await splitLogits(model, tokens, remote, 12);
      expect(got.rows.length, name).toBe(want.rows.length);
      expect(maxAbsDiff(got.rows, want.rows), name).toBeLessThanOrEqual(1e-4);
      expect(got.usage.degraded, name).toBeNull();
      expect(got.usage.hot_hits + got.usage.cold_calls, name).toBe(want.usage.hot_hits);
      if (name === 'all') expect(got.usage.cold_calls).toBe(0);
      else expect(got.usage.cold_calls, name).toBeGreaterThan(0);
      if (name === 'none') expect(got.usage.hot_hits).toBe(0);
    }
  });

  it('greedy text through the API equals the CLI for every hot set, whole and streamed', async () => {
    for (const [name, hot] of await hotSets()) {
      for (const g of inject('greedy')) {
        const vars = { HOT_EXPERTS: hot };
        const body =
          g.kind === 'chat'
            ? { path: '/v1/chat/completions', json: { model: MODEL, messages: [{ role: 'user', content: g.input }], max_tokens: g.maxTokens, temperature: 0 } }
            : { path: '/v1/completions', json: { model: MODEL, prompt: g.input, max_tokens: g.maxTokens, temperature: 0 } };
        const post = (extra: object) =>
          callWithEnv(vars, body.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body.json, ...extra }) });
        const whole = (await (await post({})).json()) as any;
        const text = g.kind === 'chat' ? whole.choices[0].message.content : whole.choices[0].text;
        expect(text, `${name} ${g.kind}`).toBe(g.text);
        expect(whole.usage.moe).toMatchObject({ policy: 'remote', degraded: null });
        if (name === 'none') expect(whole.usage.moe.hot_hits).toBe(0);
        if (name === 'all') expect(whole.usage.moe.cold_calls).toBe(0);

        const events = await readSse(await post({ stream: true, stream_options: { include_usage: true } }));
        const streamed = events.slice(0, -1).map((e) => (g.kind === 'chat' ? (e.choices[0].delta.content ?? '') : e.choices[0].text)).join('');
        expect(streamed, `${name} ${g.kind} streamed`).toBe(g.text);
        expect(countsOf(events.at(-1).usage)).toEqual(countsOf(whole.usage));
      }
    }
  });

  it('the default deployment (wrangler.toml: half the experts hot, backend set) computes cold experts remotely', async () => {
    const res = await callWithEnv({}, '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Hello there', max_tokens: 8, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-moe-degraded')).toBeNull();
    const u = ((await res.json()) as any).usage.moe;
    expect(u).toMatchObject({ policy: 'remote', degraded: null });
    expect(u.hot_hits).toBeGreaterThan(0);
    expect(u.cold_calls).toBeGreaterThan(0);
    expect(u.remote_ms).toBeGreaterThanOrEqual(0);
  });
});

describe('local policies', () => {
  it.each(['substitute', 'drop'] as const)('%s never calls the backend and counts the cold picks', async (policy) => {
    const res = await callWithEnv({ HOT_EXPERTS: '50%' }, '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Hello there', max_tokens: 8, temperature: 0, moe: { policy } }),
    });
    expect(res.status).toBe(200);
    const u = ((await res.json()) as any).usage.moe;
    expect(u).toMatchObject({ policy, degraded: null, remote_ms: 0 });
    expect(u.cold_calls).toBeGreaterThan(0);
  });

  it('COLD_POLICY sets the deployment default; moe.policy overrides it', async () => {
    const post = (moe?: object) =>
      callWithEnv({ COLD_POLICY: 'drop' }, '/v1/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, prompt: 'Hi', max_tokens: 2, ...(moe ? { moe } : {}) }),
      });
    expect(((await (await post()).json()) as any).usage.moe.policy).toBe('drop');
    expect(((await (await post({ policy: 'remote' })).json()) as any).usage.moe.policy).toBe('remote');
  });
});

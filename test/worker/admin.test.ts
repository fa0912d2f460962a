// GET|PUT /admin/hot-set: bearer ADMIN_TOKEN; PUT validates against the manifest and HOT_BUDGET_MB (400),
// persists hot-set.json in R2 as the next version, and the next request runs on the new hot set, here and in
// another isolate's model (which looks again after HOT_SET_REFRESH_MS); a generation already running keeps
// its weights, which are freed when it ends.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/app';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { ModelCache } from '../../src/runtime/model-cache';
import { HOTSET_MODEL_ID } from './cases';
import { callWithEnv, expectOpenAIError, readSse } from './helpers';

const token = inject('backend').adminToken;
// token by token: the hit counts below are those of plain decoding (speculation's verification passes also route
// the drafted positions they reject: test/worker/speculative.test.ts)
const VARS = { MODEL_ID: HOTSET_MODEL_ID, SPECULATIVE_MAX_TOKENS: '0' };
const auth = { authorization: `Bearer ${token}` };

function admin(method: 'GET' | 'PUT', body?: unknown, headers: Record<string, string> = auth, vars: Record<string, string> = {}): Promise<Response> {
  return callWithEnv({ ...VARS, ...vars }, '/admin/hot-set', {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function moeOf(res: Response): Promise<{ hot_hits: number; cold_calls: number; degraded: string | null }> {
  expect(res.status).toBe(200);
  return ((await res.json()) as any).usage.moe;
}

function complete(vars: Record<string, string> = {}): Promise<Response> {
  return callWithEnv({ ...VARS, ...vars }, '/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: HOTSET_MODEL_ID, prompt: 'Once upon a time', max_tokens: 6, temperature: 0 }),
  });
}

const storedKey = `${env.MODEL_PREFIX}/${HOTSET_MODEL_ID}/hot-set.json`;

// the served model's shape, read from its manifest: layers, experts per layer, heap bytes of one expert
let L = 0;
let E = 0;
let expertBytes = 0;
beforeAll(async () => {
  const model = await loadModelFromR2({ ...env, ...VARS, HOT_EXPERTS: '{"layers": {"0": [0]}}' });
  ({ numLayers: L, numExperts: E } = model.manifest.architecture);
  expertBytes = model.hotVersion.hotSet.bytes;
});

describe('admin auth', () => {
  it('is disabled (403) without ADMIN_TOKEN, 401 without or with a wrong bearer token', async () => {
    await expectOpenAIError(await admin('GET', undefined, auth, { ADMIN_TOKEN: '' }), 403, { code: 'admin_disabled' });
    await expectOpenAIError(await admin('GET', undefined, {}), 401, { type: 'authentication_error' });
    await expectOpenAIError(await admin('GET', undefined, { authorization: `Bearer ${token}x` }), 401);
    await expectOpenAIError(await admin('PUT', { preset: 'none' }, { authorization: 'Bearer nope' }), 401);
    expect(await env.MODELS.head(storedKey)).toBeNull();
  });
});

describe('GET|PUT /admin/hot-set', () => {
  it('GET reports the deployment hot set (HOT_EXPERTS) before anything is stored', async () => {
    const res = await admin('GET');
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ model: HOTSET_MODEL_ID, stored: null, version: 0, source: 'env', experts_total: L * E, bytes: (L * E * expertBytes) / 2 });
    expect(Object.values(body.layers).map((l: any) => l.length)).toEqual(new Array(L).fill(E / 2)); // wrangler.toml: 50%
  });

  it.each([
    ['an unknown expert', () => ({ layers: { '0': [1, E] } }), 'layers.0[1]'],
    ['an unknown layer', () => ({ layers: { [L]: [0] } }), `layers.L`],
    ['a duplicate expert', () => ({ layers: { '1': [3, 3] } }), 'layers.1[1]'],
    ['a negative id', () => ({ layers: { '0': [-1] } }), 'layers.0.0'],
    ['an unknown preset', () => ({ preset: 'most' }), 'preset'],
    ['layers and preset together', () => ({ preset: 'all', layers: {} }), 'layers'],
  ])('PUT with %s -> 400, nothing stored', async (_, body, param) => {
    await expectOpenAIError(await admin('PUT', body()), 400, { param: param.replace('L', String(L)), code: 'invalid_hot_set', type: 'invalid_request_error' });
    expect(await env.MODELS.head(storedKey)).toBeNull();
  });

  it('PUT over HOT_BUDGET_MB -> 400 hot_set_over_budget', async () => {
    const budgetMb = String((2.5 * expertBytes) / 2 ** 20); // room for two experts
    const e = await expectOpenAIError(await admin('PUT', { layers: { '0': [0, 1, 2] } }, auth, { HOT_BUDGET_MB: budgetMb, HOT_EXPERTS: 'none' }), 400, { code: 'hot_set_over_budget' });
    expect(e.message).toMatch(/over the budget/);
    expect(await env.MODELS.head(storedKey)).toBeNull();
  });

  it('PUT persists a new version in R2 and the next request runs on it', async () => {
    const before = await moeOf(await complete());
    expect(before.hot_hits).toBeGreaterThan(0);
    expect(before.cold_calls).toBeGreaterThan(0);

    const put = await admin('PUT', { layers: {} });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ version: 1, source: 'r2', experts: 0, stored: { version: 1 } });
    const stored = JSON.parse(await (await env.MODELS.get(storedKey))!.text());
    expect(stored).toMatchObject({ format: 'moe-edge/hot-set/1', version: 1, model: expect.any(String), layers: { '0': [], '1': [] } });

    const none = await moeOf(await complete());
    expect(none).toMatchObject({ hot_hits: 0, degraded: null });
    expect(none.cold_calls).toBe(before.hot_hits + before.cold_calls);

    const all = await admin('PUT', { preset: 'all' });
    expect(await all.json()).toMatchObject({ version: 2, experts: L * E });
    const get = (await (await admin('GET')).json()) as any;
    expect(get).toMatchObject({ version: 2, source: 'r2', stored: { version: 2 }, experts: L * E });
    expect(await moeOf(await complete())).toMatchObject({ hot_hits: before.hot_hits + before.cold_calls, cold_calls: 0 });
  });

  it('another isolate picks the new version up on its next request after HOT_SET_REFRESH_MS; running generations keep theirs', async () => {
    // a second model cache stands in for another isolate of the same deployment
    const other = new ModelCache(loadModelFromR2);
    const app = createApp(other);
    const otherEnv = { ...env, ...VARS, HOT_SET_REFRESH_MS: '1' };
    const send = (stream = false) =>
      Promise.resolve(
        app.fetch(
          new Request('http://worker/v1/completions', {
            method: 'POST',
            body: JSON.stringify({ model: HOTSET_MODEL_ID, prompt: 'Once upon a time', max_tokens: 8, temperature: 0, stream, stream_options: { include_usage: true } }),
          }),
          otherEnv,
          createExecutionContext(),
        ),
      );
    const model = await other.getModel(otherEnv, () => {});
    const v0 = model.hotVersion.id;
    const total = ((await (await send()).json()) as any).usage.moe;
    const all = total.hot_hits + total.cold_calls;

    // a stream starts on the current version, then the hot set changes under it
    const running = await send(true);
    const reader = running.body!.getReader();
    await reader.read();
    const put = await admin('PUT', { layers: { '0': [2], '1': [5] } });
    expect(put.status).toBe(200);
    const version = ((await put.json()) as any).version;
    expect(version).toBeGreaterThan(v0);

    await new Promise((r) => setTimeout(r, 20)); // longer than HOT_SET_REFRESH_MS
    const after = ((await (await send()).json()) as any).usage.moe;
    expect(model.hotVersion).toMatchObject({ id: version, source: 'r2' });
    expect(after.hot_hits).toBeLessThan(all);
    expect(after.hot_hits + after.cold_calls).toBe(all);
    expect(after.degraded).toBeNull();

    // the old version stays in memory while the stream still uses it, and goes when the stream ends
    expect(model.hot.liveVersions).toBe(2);
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(model.hot.liveVersions).toBe(1);
    expect(model.hot.residentExperts).toBe(2);
  });

  it('the stored hot set survives a fresh load (a new isolate starts on it)', async () => {
    const model = await loadModelFromR2({ ...env, ...VARS });
    expect(model.hotVersion.source).toBe('r2');
    expect(model.hotVersion.hotSet.layers.slice(0, 2)).toEqual([[2], [5]]);
    const events = await readSse(
      await callWithEnv(VARS, '/v1/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: HOTSET_MODEL_ID, prompt: 'Hi', max_tokens: 3, stream: true, stream_options: { include_usage: true } }),
      }),
    );
    expect(events.at(-1).usage.moe.degraded).toBeNull();
  });
});

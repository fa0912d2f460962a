// Bad input, auth, body limits and a corrupt model: the right status with OpenAI's error shape, and the
// Worker keeps serving good requests afterwards.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { call, callWithEnv, expectOpenAIError, MODEL, postJson } from './helpers';
import { CORRUPT_MODEL_ID, CORRUPT_OBJECT } from './cases';

const chat = (extra: Record<string, unknown> = {}) => ({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, ...extra });

async function expectServesNext() {
  const res = await postJson('/v1/chat/completions', chat());
  expect(res.status).toBe(200);
  expect(((await res.json()) as any).choices[0].message.role).toBe('assistant');
}

async function contextLength(): Promise<number> {
  return ((await (await call('/healthz')).json()) as any).model.context_length;
}

describe('bad requests get 4xx in OpenAI shape, then the next good request works', () => {
  it('malformed JSON -> 400', async () => {
    await expectOpenAIError(await call('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' }), 400, {
      type: 'invalid_request_error',
      param: null,
    });
    await expectServesNext();
  });

  it('a body that is not an object -> 400', async () => {
    await expectOpenAIError(await postJson('/v1/completions', [1, 2]), 400);
    await expectServesNext();
  });

  it.each([
    ['temperature', { temperature: 'hot' }],
    ['temperature', { temperature: 2.5 }],
    ['max_tokens', { max_tokens: -1 }],
    ['max_tokens', { max_tokens: 1.5 }],
    ['top_p', { top_p: 0 }],
    ['stop', { stop: ['a', 'b', 'c', 'd', 'e'] }],
    ['n', { n: 5 }],
    ['stream', { stream: 'yes' }],
    ['moe.policy', { moe: { policy: 'teleport' } }],
    ['messages[0].role', { messages: [{ role: 'wizard', content: 'x' }] }],
    ['model', { model: 42 }],
  ])('wrong value for %s -> 400 naming the param', async (param, extra) => {
    await expectOpenAIError(await postJson('/v1/chat/completions', chat(extra)), 400, { param, type: 'invalid_request_error' });
    await expectServesNext();
  });

  it('missing prompt on /v1/completions -> 400 param prompt', async () => {
    await expectOpenAIError(await postJson('/v1/completions', { model: MODEL }), 400, { param: 'prompt' });
    await expectServesNext();
  });

  it('empty messages -> 400', async () => {
    await expectOpenAIError(await postJson('/v1/chat/completions', chat({ messages: [] })), 400, { param: 'messages' });
    await expectServesNext();
  });

  it('unknown model -> 404 model_not_found', async () => {
    await expectOpenAIError(await postJson('/v1/chat/completions', chat({ model: 'gpt-17' })), 404, { code: 'model_not_found', param: 'model' });
    await expectOpenAIError(await call('/v1/models/gpt-17'), 404, { code: 'model_not_found' });
    await expectServesNext();
  });

  it('max_tokens beyond the context -> 400 on max_tokens', async () => {
    const ctx = await contextLength();
    await expectOpenAIError(await postJson('/v1/completions', { model: MODEL, prompt: 'Hi', max_tokens: ctx + 1 }), 400, { param: 'max_tokens' });
    await expectServesNext();
  });

  it('a prompt longer than the context -> 400 context_length_exceeded', async () => {
    const ctx = await contextLength();
    const prompt = 'the quick brown fox jumps over the lazy dog '.repeat(ctx);
    await expectOpenAIError(await postJson('/v1/completions', { model: MODEL, prompt }), 400, { code: 'context_length_exceeded', param: 'prompt' });
    await expectOpenAIError(await postJson('/v1/chat/completions', chat({ messages: [{ role: 'user', content: prompt }] })), 400, {
      code: 'context_length_exceeded',
      param: 'messages',
    });
    await expectServesNext();
  });

  it('a body over MAX_BODY_BYTES -> 413', async () => {
    const big = 'x'.repeat(Number(env.MAX_BODY_BYTES) + 1);
    await expectOpenAIError(await postJson('/v1/completions', { model: MODEL, prompt: big }), 413, { code: 'payload_too_large' });
    await expectServesNext();
  });

  it('unknown route -> 404 in OpenAI shape', async () => {
    await expectOpenAIError(await call('/v1/embeddings', { method: 'POST', body: '{}' }), 404, { code: 'unknown_url' });
  });
});

describe('corrupt model objects', () => {
  it('a shard that fails its digest -> 500 naming the object; healthz says why', async () => {
    const err = await expectOpenAIError(
      await callWithEnv({ MODEL_ID: CORRUPT_MODEL_ID }, '/v1/chat/completions', {
        method: 'POST',
        body: JSON.stringify({ ...chat(), model: CORRUPT_MODEL_ID }),
      }),
      500,
      { type: 'server_error' },
    );
    expect(err.message).toContain(CORRUPT_OBJECT);
    const health = await callWithEnv({ MODEL_ID: CORRUPT_MODEL_ID }, '/healthz');
    expect(health.status).toBe(503);
    expect(JSON.stringify(await health.json())).toContain(CORRUPT_OBJECT);
    await expectServesNext();
  });

  it('a failed load is not cached: repairing the object makes the next request succeed', async () => {
    const id = 'repaired';
    const from = `${env.MODEL_PREFIX}/${CORRUPT_MODEL_ID}/`;
    const listed = await env.MODELS.list({ prefix: from });
    for (const o of listed.objects) {
      const obj = await env.MODELS.get(o.key);
      await env.MODELS.put(`${env.MODEL_PREFIX}/${id}/${o.key.slice(from.length)}`, await obj!.arrayBuffer());
    }
    const req = () => callWithEnv({ MODEL_ID: id }, '/v1/completions', { method: 'POST', body: JSON.stringify({ model: id, prompt: 'Hi', max_tokens: 2 }) });
    await expectOpenAIError(await req(), 500);
    const good = await env.MODELS.get(`${env.MODEL_PREFIX}/${env.MODEL_ID}/${CORRUPT_OBJECT}`);
    await env.MODELS.put(`${env.MODEL_PREFIX}/${id}/${CORRUPT_OBJECT}`, await good!.arrayBuffer());
    expect((await req()).status).toBe(200);
  });
});

describe('API_KEYS', () => {
  const vars = { API_KEYS: 'key-one, key-two' };
  const send = (headers: Record<string, string>) =>
    callWithEnv(vars, '/v1/completions', { method: 'POST', headers, body: JSON.stringify({ model: MODEL, prompt: 'Hi', max_tokens: 2 }) });

  it('missing key -> 401', async () => {
    await expectOpenAIError(await send({}), 401, { type: 'authentication_error', code: 'invalid_api_key' });
  });

  it('wrong key -> 401', async () => {
    await expectOpenAIError(await send({ authorization: 'Bearer key-three' }), 401, { code: 'invalid_api_key' });
    await expectOpenAIError(await send({ authorization: 'Basic key-one' }), 401);
  });

  it('any listed key -> 200; /healthz needs none', async () => {
    expect((await send({ authorization: 'Bearer key-one' })).status).toBe(200);
    expect((await send({ authorization: 'bearer key-two' })).status).toBe(200);
    expect((await callWithEnv(vars, '/healthz')).status).toBe(200);
    await expectOpenAIError(await callWithEnv(vars, '/v1/models'), 401);
  });
});

describe('fields that would change the answer and are not implemented: 400, never silently ignored', () => {
  const completion = (extra: Record<string, unknown>) => ({ model: MODEL, prompt: 'Hi', max_tokens: 2, ...extra });
  it.each([
    // logprobs, echo, best_of, tools and response_format are implemented (issue 17): test/worker/structured.test.ts
    ['/v1/chat/completions', chat({ frequency_penalty: 0.5 }), 'frequency_penalty'],
    ['/v1/chat/completions', chat({ logit_bias: { '5': 100 } }), 'logit_bias'],
    ['/v1/completions', completion({ suffix: ' the end' }), 'suffix'],
  ])('%s with %j -> 400 unsupported_parameter naming %s', async (path, body, param) => {
    await expectOpenAIError(await postJson(path, body), 400, { code: 'unsupported_parameter', param, type: 'invalid_request_error' });
    await expectServesNext();
  });

  it('their off values, and fields that change nothing the client gets, are accepted', async () => {
    const off = { logprobs: false, top_logprobs: 0, tools: [], tool_choice: 'none', response_format: { type: 'text' }, frequency_penalty: 0, presence_penalty: 0, logit_bias: {}, user: 'u-1', store: false, metadata: { a: 'b' }, parallel_tool_calls: true };
    const res = await postJson('/v1/chat/completions', chat(off));
    expect(res.status).toBe(200);
    const c = await postJson('/v1/completions', completion({ logprobs: 0, echo: false, best_of: 1, suffix: '', user: 'u-1' }));
    expect(c.status).toBe(200);
  });
});

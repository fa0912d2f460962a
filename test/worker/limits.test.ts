// The deployment's limits, each with its error and its var (wrangler.toml): request body size (413, also for a
// chunked body without content-length), prompt tokens (400 prompt_too_long), max_tokens (400 naming the
// field; the default capped), concurrent generations per isolate (429 with Retry-After), and the isolate's
// memory budget, checked before anything is allocated (400 when a request could never fit, 503 with
// Retry-After while running generations hold the memory); under a flood the heap stays within the budget
// and nothing answers 500.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import { generationBytes, positionsThatFit } from '../../src/runtime/admission';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { ModelCache } from '../../src/runtime/model-cache';
import type { ServedModel } from '../../src/runtime/served-model';
import { callWithEnv, expectOpenAIError, MODEL } from './helpers';

const complete = (vars: Record<string, string>, body: Record<string, unknown>) =>
  callWithEnv(vars, '/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'Hi', ...body }) });
const chat = (vars: Record<string, string>, body: Record<string, unknown>) =>
  callWithEnv(vars, '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Hi' }], ...body }),
  });

describe('MAX_BODY_BYTES', () => {
  it('a chunked body (no content-length) over the limit -> 413, read no further than the limit', async () => {
    const limit = Number(env.MAX_BODY_BYTES);
    let pulled = 0;
    const chunk = new TextEncoder().encode(`{"model":"${MODEL}","prompt":"${'x'.repeat(64 * 1024)}`);
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled += chunk.length;
        c.enqueue(chunk);
        if (pulled > 8 * limit) c.close(); // a client that would go on forever
      },
    });
    const res = await callWithEnv({}, '/v1/completions', { method: 'POST', body, duplex: 'half' } as RequestInit);
    await expectOpenAIError(res, 413, { code: 'payload_too_large' });
    expect(pulled).toBeLessThan(limit + 4 * chunk.length);
  });
});

describe('MAX_PROMPT_TOKENS and MAX_COMPLETION_TOKENS', () => {
  const vars = { MAX_PROMPT_TOKENS: '6', MAX_COMPLETION_TOKENS: '4' };
  const long = 'the quick brown fox jumps over the lazy dog';

  it('a prompt over MAX_PROMPT_TOKENS -> 400 prompt_too_long naming prompt / messages', async () => {
    const e = await expectOpenAIError(await complete(vars, { prompt: long, max_tokens: 1 }), 400, { code: 'prompt_too_long', param: 'prompt', type: 'invalid_request_error' });
    expect(e.message).toMatch(/at most 6 prompt tokens.*MAX_PROMPT_TOKENS/);
    await expectOpenAIError(await chat(vars, { messages: [{ role: 'user', content: long }], max_tokens: 1 }), 400, { code: 'prompt_too_long', param: 'messages' });
    expect((await complete(vars, { prompt: 'Hi', max_tokens: 1 })).status).toBe(200);
  });

  it('max_tokens / max_completion_tokens over MAX_COMPLETION_TOKENS -> 400 naming the field', async () => {
    const e = await expectOpenAIError(await complete(vars, { max_tokens: 5 }), 400, { param: 'max_tokens', code: 'invalid_value' });
    expect(e.message).toMatch(/at most 4 tokens.*MAX_COMPLETION_TOKENS/);
    await expectOpenAIError(await chat({ ...vars, MAX_PROMPT_TOKENS: '64' }, { max_completion_tokens: 5 }), 400, { param: 'max_completion_tokens' });
    expect((await complete(vars, { max_tokens: 4 })).status).toBe(200);
  });

  it('without max_tokens the completion is capped at MAX_COMPLETION_TOKENS', async () => {
    const res = await complete({ ...vars, MAX_PROMPT_TOKENS: '64' }, { temperature: 1, seed: 3, stop: null });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(4);
  });

  it('a limit that is not a positive integer is a configuration error (500 naming the var), not a silent default', async () => {
    const e = await expectOpenAIError(await complete({ MAX_COMPLETION_TOKENS: 'lots' }, { max_tokens: 1 }), 500, { code: 'invalid_config' });
    expect(e.message).toContain('MAX_COMPLETION_TOKENS');
  });

  it('KV_CACHE_TYPE other than f32 | f16 | q8_0 | q4_0 is a configuration error (500 naming it)', async () => {
    const e = await expectOpenAIError(await complete({ KV_CACHE_TYPE: 'q5_1' }, { max_tokens: 1 }), 500, { code: 'invalid_config' });
    expect(e.message).toContain('KV_CACHE_TYPE');
  });
});

/** A model cache of our own (same loader as the Worker) so the test can read the model's heap. */
function ownApp() {
  const cache = new ModelCache(loadModelFromR2);
  const app = createApp(cache);
  const send = (vars: Record<string, string>, body: Record<string, unknown>, signal?: AbortSignal) =>
    Promise.resolve(
      app.fetch(
        new Request('http://worker/v1/completions', { method: 'POST', body: JSON.stringify({ model: MODEL, prompt: 'Hi', ...body }), signal }),
        { ...env, ...vars },
        createExecutionContext(),
      ),
    );
  const model = (vars: Record<string, string>) => cache.getModel({ ...env, ...vars }, () => {}) as Promise<ServedModel>;
  return { send, model };
}

/** Opens a stream and reads its first event: the generation now holds its KV cache and its admission. */
async function openStream(res: Response): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  await reader.read();
  return reader;
}

describe('MAX_CONCURRENT_GENERATIONS', () => {
  it('one generation more than the limit -> 429 with Retry-After; served again once one ends', async () => {
    const { send } = ownApp();
    const vars = { MAX_CONCURRENT_GENERATIONS: '2' };
    const a = await openStream(await send(vars, { max_tokens: 100, stream: true }));
    const b = await openStream(await send(vars, { max_tokens: 100, stream: true }));
    const refused = await send(vars, { max_tokens: 2 });
    expect(refused.headers.get('retry-after')).toBe('1');
    const e = await expectOpenAIError(refused, 429, { code: 'too_many_concurrent_generations', type: 'rate_limit_error' });
    expect(e.message).toContain('MAX_CONCURRENT_GENERATIONS=2');
    await a.cancel();
    expect((await send(vars, { max_tokens: 2 })).status).toBe(200);
    await b.cancel();
  });
});

describe('ISOLATE_MEMORY_MB', () => {
  let weights = 0;
  let perGen = 0;
  let promptTokens = 0;
  let arch: ServedModel['manifest']['architecture'];
  let kvType: ServedModel['kvCacheType']; // wrangler.toml's KV_CACHE_TYPE: admission counts the cache at it
  const MAX = 24; // max_tokens of the generations that fill the budget
  // room for one generation and a half beside the weights: one fits, two do not. At an f32 KV cache, where a
  // position costs enough that the budget, not the context, is what refuses a long request (a q8_0 one below).
  const KV = { KV_CACHE_TYPE: 'f32' };
  const budgetVars = () => ({ ISOLATE_MEMORY_MB: String((weights + 1.5 * perGen) / 2 ** 20), MAX_CONCURRENT_GENERATIONS: '64', ...KV });

  beforeAll(async () => {
    const { send, model } = ownApp();
    const m = await model(KV);
    arch = m.manifest.architecture;
    weights = m.hot.bytes;
    promptTokens = ((await (await send(KV, { max_tokens: 1 })).json()) as any).usage.prompt_tokens;
    kvType = m.kvCacheType;
    perGen = generationBytes(arch, promptTokens + MAX, kvType);
  });

  it('a request that can never fit beside the weights -> 400 memory_budget_exceeded naming max_tokens, before any allocation', async () => {
    const { send, model } = ownApp();
    const vars = budgetVars();
    const heap = (await model(vars)).kernels.heap;
    const idle = heap.usedBytes;
    const fits = positionsThatFit(arch, Math.floor(Number(vars.ISOLATE_MEMORY_MB) * 2 ** 20) - weights, kvType);
    const tooMany = Math.min(fits - promptTokens + 1, arch.contextLength - promptTokens);
    expect(tooMany).toBeGreaterThan(MAX); // the context alone would allow it: the budget is what refuses it
    const e = await expectOpenAIError(await send(vars, { max_tokens: tooMany }), 400, { code: 'memory_budget_exceeded', param: 'max_tokens', type: 'invalid_request_error' });
    expect(e.message).toMatch(new RegExp(`at most ${fits} tokens fit`));
    expect(heap.usedBytes).toBe(idle);
    expect((await send(vars, { max_tokens: tooMany - 1 })).status).toBe(200);
  });

  it('at the default KV_CACHE_TYPE (q8_0) the 400 counts the cache at q8_0: the same numbers as admission and plan', async () => {
    const { send, model } = ownApp();
    const m = await model({});
    expect(m.kvCacheType).toBe('q8_0');
    const room = generationBytes(arch, 300, 'q8_0');
    const vars = { ISOLATE_MEMORY_MB: String((weights + room) / 2 ** 20), MAX_CONCURRENT_GENERATIONS: '64' };
    const fits = positionsThatFit(arch, Math.floor(Number(vars.ISOLATE_MEMORY_MB) * 2 ** 20) - weights, 'q8_0');
    expect(fits).toBeGreaterThanOrEqual(300);
    expect(fits).toBeGreaterThan(positionsThatFit(arch, Math.floor(Number(vars.ISOLATE_MEMORY_MB) * 2 ** 20) - weights, 'f32'));
    const e = await expectOpenAIError(await send(vars, { max_tokens: fits - promptTokens + 1 }), 400, { code: 'memory_budget_exceeded', param: 'max_tokens' });
    expect(e.message).toMatch(new RegExp(`at most ${fits} tokens fit`));
    expect((await send(vars, { max_tokens: fits - promptTokens })).status).toBe(200);
  });

  it('a second generation while the first holds the memory -> 503 isolate_memory_busy with Retry-After; then served', async () => {
    const { send, model } = ownApp();
    const vars = budgetVars();
    const first = await openStream(await send(vars, { max_tokens: MAX, stream: true }));
    const busy = await send(vars, { max_tokens: MAX });
    expect(busy.headers.get('retry-after')).toBe('1');
    const e = await expectOpenAIError(busy, 503, { code: 'isolate_memory_busy', type: 'server_error' });
    expect(e.message).toMatch(/ISOLATE_MEMORY_MB/);
    await first.cancel();
    expect((await send(vars, { max_tokens: MAX })).status).toBe(200);
    expect((await model(vars)).kernels.heap.usedBytes).toBeLessThanOrEqual(weights + 1.5 * perGen);
  });

  it('a flood of 40 concurrent streams under a budget for 4: each gets 200 or 503 + Retry-After, the heap stays within the budget', async () => {
    const { send, model } = ownApp();
    const budget = weights + 4.5 * perGen;
    const vars = { ISOLATE_MEMORY_MB: String(budget / 2 ** 20), MAX_CONCURRENT_GENERATIONS: '64' };
    const heap = (await model(vars)).kernels.heap;
    const idle = heap.usedBytes;
    let peak = 0;
    const statuses = await Promise.all(
      Array.from({ length: 40 }, async () => {
        const res = await send(vars, { max_tokens: MAX, stream: true });
        peak = Math.max(peak, heap.usedBytes);
        if (res.status === 503) {
          expect(res.headers.get('retry-after')).toBe('1');
          await res.json();
          return 503;
        }
        expect(res.status).toBe(200);
        const text = await res.text();
        peak = Math.max(peak, heap.usedBytes);
        expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
        return 200;
      }),
    );
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(4);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(budget);
    expect(heap.usedBytes).toBe(idle);
  });
});

// A client that goes away stops its generation and frees what it allocated in the kernel heap.
// Uses the app with its own model cache (same loader as the Worker), so the test can read the heap.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import type { ServedModel } from '../../src/runtime/served-model';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { ModelCache } from '../../src/runtime/model-cache';
import { MODEL } from './helpers';

const cache = new ModelCache(loadModelFromR2);
const app = createApp(cache);

async function modelHeap(): Promise<ServedModel['kernels']['heap']> {
  return (await cache.getModel(env, () => {})).kernels.heap;
}

function send(body: unknown, signal?: AbortSignal): Promise<Response> {
  const req = new Request('http://worker/v1/chat/completions', { method: 'POST', body: JSON.stringify(body), signal });
  return Promise.resolve(app.fetch(req, env, createExecutionContext()));
}

describe('cancellation', () => {
  it('cancelling a stream stops the generation and frees its memory', async () => {
    const heap = await modelHeap();
    const idle = heap.usedBytes;
    const res = await send({ model: MODEL, messages: [{ role: 'user', content: 'Go on and on' }], max_tokens: 400, temperature: 0, stream: true });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('"role":"assistant"');
    expect(heap.usedBytes).toBeGreaterThan(idle); // the generation holds its KV cache
    await reader.cancel();
    expect(heap.usedBytes).toBe(idle);
  });

  it('cancelling a stream of n choices stops every one of them and frees all their memory', async () => {
    const heap = await modelHeap();
    const idle = heap.usedBytes;
    const res = await send({ model: MODEL, messages: [{ role: 'user', content: 'Go on and on' }], max_tokens: 400, temperature: 1, seed: 3, n: 3, stream: true });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    const held = heap.usedBytes - idle;
    expect(held).toBeGreaterThan(0);
    await reader.cancel();
    expect(heap.usedBytes).toBe(idle);
  });

  it('a request aborted by the client frees its memory and the next one is served', async () => {
    const heap = await modelHeap();
    const idle = heap.usedBytes;
    const ac = new AbortController();
    ac.abort(new Error('client went away'));
    const res = await send({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 50 }, ac.signal);
    expect(res.status).toBe(499);
    expect(heap.usedBytes).toBe(idle);
    const ok = await send({ model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 });
    expect(ok.status).toBe(200);
    await ok.json();
    expect(heap.usedBytes).toBe(idle);
  });
});

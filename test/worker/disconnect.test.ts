// A client that disconnects mid-stream: the generation stops (no more expert calls reach the backend, its KV
// cache goes back to the heap) and its WebSocket session to the backend closes, seen from the backend's side
// (moe_backend_ws_sessions in its /metrics). Both ways a client leaves: cancelling the response body, and
// the request's signal aborting (workerd's enable_request_signal). Every expert is cold, so every token of
// every layer goes to the backend, and the backend is one no other test uses.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { describe, expect, inject, it } from 'vitest';
import { createApp } from '../../src/app';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { ModelCache } from '../../src/runtime/model-cache';
import type { ServedModel } from '../../src/runtime/served-model';
import { MODEL } from './helpers';

const url = inject('quietBackendUrl');
const token = inject('backend').token;
const VARS = { HOT_EXPERTS: 'none', BACKEND_URL: url, BACKEND_TOKEN: token, COLD_POLICY: 'remote', DEGRADED_POLICY: 'error', BACKEND_TIMEOUT_MS: '10000' };
const cache = new ModelCache(loadModelFromR2);
const app = createApp(cache);

function stream(signal?: AbortSignal): Promise<Response> {
  const body = JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 400, temperature: 0, stream: true });
  return Promise.resolve(app.fetch(new Request('http://worker/v1/completions', { method: 'POST', body, signal }), { ...env, ...VARS }, createExecutionContext()));
}

async function backendMetric(name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Polls the backend's gauge until it reads `want` (a session closes asynchronously on the backend). */
async function sessionsBecome(want: number): Promise<number> {
  let got = NaN;
  for (let i = 0; i < 200; i++) {
    got = await backendMetric('moe_backend_ws_sessions');
    if (got === want) return got;
    await new Promise((r) => setTimeout(r, 25));
  }
  return got;
}

const calls = () => backendMetric('moe_backend_calls_total{transport="ws"}');

async function heapOf(): Promise<ServedModel['kernels']['heap']> {
  return ((await cache.getModel({ ...env, ...VARS }, () => {})) as ServedModel).kernels.heap;
}

describe('a client that disconnects mid-stream', () => {
  it.each(['cancels the body', 'aborts the request'])('%s: the generation stops, its memory is freed, the backend session closes', async (how) => {
    const heap = await heapOf();
    const idle = heap.usedBytes;
    expect(await sessionsBecome(0)).toBe(0);
    const ac = new AbortController();
    const res = await stream(ac.signal);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    for (let i = 0; i < 4; i++) await reader.read(); // a few tokens are out
    expect(await backendMetric('moe_backend_ws_sessions')).toBe(1);
    expect(heap.usedBytes).toBeGreaterThan(idle);

    if (how === 'cancels the body') await reader.cancel();
    else {
      ac.abort(new Error('client went away'));
      // what the stream still delivers after the abort: at most an in-band error, then its end
      for (let r = await reader.read(); !r.done; r = await reader.read());
    }
    expect(await sessionsBecome(0)).toBe(0);
    expect(heap.usedBytes).toBe(idle);
    const after = await calls();
    await new Promise((r) => setTimeout(r, 300));
    expect(await calls()).toBe(after); // nothing more is computed for it
    const { numLayers } = (await cache.getModel({ ...env, ...VARS }, () => {})).manifest.architecture;
    expect(after).toBeLessThan(numLayers * 400 * (how === 'cancels the body' ? 1 : 2)); // far from 400 tokens' worth
  });

  it('the next generation opens a new session and completes', async () => {
    const res = await stream();
    const text = await res.text();
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(await sessionsBecome(0)).toBe(0);
  });
});

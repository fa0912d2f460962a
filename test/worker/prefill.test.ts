// Remote prefill in workerd with the real backend process: prompts of at least REMOTE_PREFILL_MIN_TOKENS are
// prefilled by the backend and its KV stream placed into the Worker's cache, which gives exactly the logits and
// greedy tokens of a local prefill (cpu device: identical bits) for every KV-cache type and hot set; a backend that
// dies mid-stream, truncates or corrupts the stream, answers for another model or stalls makes the Worker prefill
// locally, flagged (usage.moe, x-moe-degraded, /metrics), with the same output; the next request works.
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import { Sequence } from '../../src/engine/forward';
import { KV_CACHE_TYPES } from '../../src/engine/kv-cache';
import { prefill } from '../../src/engine/prefill';
import { finishPrefill } from '../../src/engine/prefill-layers';
import { remotePrefill } from '../../src/remote/remote-prefill';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { randomHalf } from '../helpers/split-score';
import { callGreedy as call, callWithEnv, readSse, textOf } from './helpers';

const backend = inject('backend');
const REMOTE = { REMOTE_PREFILL_MIN_TOKENS: '1' };


describe('remote prefill is exact', () => {
  it.each(KV_CACHE_TYPES)('KV cache %s: the streamed cache gives the local prefill\'s logits bit for bit', async (kvType) => {
    const model = await loadModelFromR2({ ...env, HOT_EXPERTS: 'all', KV_CACHE_TYPE: kvType });
    const k = model.kernels;
    const g = model.beginExperts({ policy: 'remote', degradedPolicy: 'error', backend: null });
    const tokens = model.encode('Once upon a time, the experts of the mixture met at the edge. '.repeat(6));
    const here = new Sequence(k, g.weights, tokens.length, { kvType });
    const there = new Sequence(k, g.weights, tokens.length, { kvType });
    try {
      const want = (await prefill(k, here, g.experts, tokens, { logits: 'last' }))[0];
      const r = await remotePrefill(k.heap, there, { url: backend.url, token: backend.token, timeoutMs: 10_000 }, model.modelTag, tokens);
      const got = (await finishPrefill(k, there, g.experts, r.hidden, { logits: 'last' }))[0];
      expect(Array.from(got)).toEqual(Array.from(want));
    } finally {
      here.release();
      there.release();
      g.end();
    }
  });

  it('greedy text through the API equals the CLI for hot sets all, none and a random half, whole and streamed', async () => {
    const model = await loadModelFromR2({ ...env, HOT_EXPERTS: 'all' });
    const a = model.manifest.architecture;
    for (const hot of ['all', 'none', randomHalf(a.numLayers, a.numExperts, 99)]) {
      for (const g of inject('greedy')) {
        const vars = { ...REMOTE, HOT_EXPERTS: hot };
        const res = await call(vars, g);
        expect(res.headers.get('x-moe-degraded')).toBeNull();
        const body = (await res.json()) as any;
        expect(textOf(g.kind, body), `${hot} ${g.kind}`).toBe(g.text);
        expect(body.usage.moe).toMatchObject({ prefill: 'remote', degraded: null });
        expect(body.usage.moe.prefill_kv_bytes).toBeGreaterThan(0);
        expect(body.usage.moe.prefill_fallback).toBeUndefined();
        const events = await readSse(await call(vars, g, { stream: true, stream_options: { include_usage: true } }));
        const streamed = events.map((e) => (g.kind === 'chat' ? (e.choices[0]?.delta?.content ?? '') : (e.choices[0]?.text ?? ''))).join('');
        expect(streamed, `${hot} ${g.kind} streamed`).toBe(g.text);
        expect(events.at(-1).usage.moe.prefill).toBe('remote');
      }
    }
  });

  it('prompts shorter than REMOTE_PREFILL_MIN_TOKENS, and 0, stay local', async () => {
    const g = inject('greedy')[0];
    for (const min of ['100000', '0']) {
      const body = (await (await call({ REMOTE_PREFILL_MIN_TOKENS: min, HOT_EXPERTS: 'all' }, g)).json()) as any;
      expect(body.usage.moe).toMatchObject({ prefill: 'local', prefill_kv_bytes: 0, degraded: null });
      expect(textOf(g.kind, body)).toBe(g.text);
    }
  });
});

describe('a failing backend: local prefill, flagged, same output', () => {
  const faults: [string, Record<string, string>, string][] = [
    // the connection drops mid-stream; the second case finds the backend dead
    ['killed mid-stream', { BACKEND_URL: `${backend.proxyUrl}/kill-after/3000` }, 'unavailable'],
    ['stream truncated', { BACKEND_URL: `${backend.proxyUrl}/truncate/5000` }, 'protocol'],
    ['stream corrupted', { BACKEND_URL: `${backend.proxyUrl}/corrupt/2000` }, 'protocol'],
    ['wrong model tag', { BACKEND_URL: `${backend.proxyUrl}/wrong-tag` }, 'backend_error'],
    ['stalled', { BACKEND_URL: `${backend.proxyUrl}/stall`, BACKEND_TIMEOUT_MS: '500' }, 'timeout'],
    ['down', { BACKEND_URL: backend.deadUrl }, 'unavailable'],
  ];
  it.each(faults)('%s', async (_name, vars, reason) => {
    for (const g of inject('greedy')) {
      // every expert resident: the prefill call is the only thing that can fail
      const res = await call({ ...REMOTE, HOT_EXPERTS: 'all', ...vars }, g);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-moe-degraded')).toBe(reason);
      const body = (await res.json()) as any;
      expect(textOf(g.kind, body)).toBe(g.text);
      expect(body.usage.moe).toMatchObject({ prefill: 'local', prefill_fallback: reason, degraded: reason, prefill_kv_bytes: 0 });
    }
    // the next request, on a healthy backend, is prefilled remotely again
    const next = (await (await call({ ...REMOTE, HOT_EXPERTS: 'all' }, inject('greedy')[0])).json()) as any;
    expect(next.usage.moe).toMatchObject({ prefill: 'remote', degraded: null });
    const metrics = await (await callWithEnv({}, '/metrics')).text();
    expect(metrics).toMatch(new RegExp(`moe_prefill_fallbacks_total\\{reason="${reason}"\\} [1-9]`));
    expect(metrics).toMatch(/moe_prefills_total\{where="remote"\} [1-9]/);
  });
});

// Expert-shard Workers seen from the front, in workerd: the experts split over the front's hot set, two shards
// (the shard role of the same bundle, src/runtime/shard-app.ts, reached through service-binding-shaped fetchers
// in this isolate) and the real GPU backend. Logits are identical to one backend serving every cold expert, and
// to the all-local engine; with every expert on the front or a shard no backend is needed; a shard that dies or
// answers garbage mid-generation degrades it (flagged, its picks go down the cold path) and the next one works.
// The same split through `wrangler dev` with one isolate per Worker is test/process/shards/edge-tiers.test.ts.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { MoeOptions } from '../../src/engine/api';
import type { FetchBinding } from '../../src/remote/connect';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { createShardApp } from '../../src/runtime/shard-app';
import { shardLayoutDocument } from '../../src/shard/layout';
import { maxAbsDiff } from '../helpers/logits';
import { splitLogits } from '../helpers/split-score';
import { callWithEnv, MODEL } from './helpers';

const backend = inject('backend');
const remote: MoeOptions = { policy: 'remote', degradedPolicy: 'error', backend: { url: backend.url, token: backend.token, timeoutMs: 10_000 } };
const shardApp = createShardApp();
let arch: { numLayers: number; numExperts: number };
let modelName = '';

/** experts e with e % 4 == r of every layer */
const every4 = (r: number) => Array.from({ length: arch.numLayers }, () => Array.from({ length: arch.numExperts }, (_, e) => e).filter((e) => e % 4 === r));

/** Writes a layout under its own name (the model cache keys on it, so each scenario loads with its own bindings). */
async function putLayout(name: string, shards: number[][][], headOn: number | null = null): Promise<void> {
  const doc = shardLayoutDocument(modelName, shards.map((layers, i) => ({ binding: `SHARD_${i}`, worker: `moe-edge-shard-${i}`, layers, head: i === headOn })));
  await env.MODELS.put(`${env.MODEL_PREFIX}/${MODEL}/${name}`, JSON.stringify(doc));
}

type Fault = { after: number; kind: 'close' | 'garbage' } | null;

/**
 * A binding to shard `name`, as the front's env holds it: the shard app's fetch in this isolate. With `fault`, the
 * socket is relayed and, after `after` replies, closed or fed a garbage frame instead of the next reply.
 */
function shardBinding(name: string, layoutName: string, fault: Fault = null): FetchBinding {
  return {
    async fetch(url, init) {
      const res = await shardApp.fetch(new Request(url, init), { ...env, ROLE: 'shard', SHARD: name, SHARD_LAYOUT: layoutName }, createExecutionContext());
      const shard = (res as Response & { webSocket?: WebSocket & { accept(): void } }).webSocket;
      if (!fault || !shard) return res;
      const [front, relay] = Object.values(new WebSocketPair());
      shard.accept();
      relay.accept();
      shard.binaryType = 'arraybuffer';
      relay.binaryType = 'arraybuffer';
      let replies = 0;
      relay.addEventListener('message', (ev) => shard.send(ev.data as ArrayBuffer));
      shard.addEventListener('message', (ev) => {
        if (++replies <= fault.after) return relay.send(ev.data as ArrayBuffer);
        if (fault.kind === 'close') {
          relay.close(1011, 'shard died');
          shard.close(1000, 'relay closed');
        } else relay.send(new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]));
      });
      return new Response(null, { status: 101, webSocket: front });
    },
  };
}

function shardEnv(layoutName: string, faults: Fault[] = [null, null]): Record<string, unknown> {
  return { SHARD_LAYOUT: layoutName, ...Object.fromEntries(faults.map((f, i) => [`SHARD_${i}`, shardBinding(`SHARD_${i}`, layoutName, f)])) };
}

beforeAll(async () => {
  const manifest = JSON.parse(await (await env.MODELS.get(`${env.MODEL_PREFIX}/${MODEL}/manifest.json`))!.text());
  arch = manifest.architecture;
  modelName = manifest.name;
  await putLayout('tiers.json', [every4(1), every4(2)]); // front: e%4==0, shards: 1 and 2, backend: 3
  await putLayout('edge-only.json', [every4(1).map((row, l) => [...row, ...every4(3)[l]]), every4(2)]); // no backend needed
  for (const name of ['fault-close.json', 'fault-garbage.json', 'healthy.json']) await putLayout(name, [every4(1), every4(2)]);
  await putLayout('head.json', [every4(1), every4(2)], 1);
  await putLayout('head-dies.json', [every4(1), every4(2)], 1);
});

const frontHot = () => JSON.stringify({ layers: Object.fromEntries(every4(0).map((row, l) => [String(l), row])) });

describe('front + 2 shards + backend', () => {
  it('prefill and decode logits equal one backend serving every cold expert, and the all-local engine', async () => {
    const tiers = await loadModelFromR2({ ...env, HOT_EXPERTS: frontHot(), ...shardEnv('tiers.json') } as never);
    const plain = await loadModelFromR2({ ...env, HOT_EXPERTS: frontHot() });
    const local = await loadModelFromR2({ ...env, HOT_EXPERTS: 'all' });
    const tokens = tiers.encode('Once upon a time, the experts of the edge and the shards');
    const got = await splitLogits(tiers, tokens, remote, 12);
    const want = await splitLogits(plain, tokens, remote, 12);
    const all = await splitLogits(local, tokens, remote, 12);
    expect(got.usage.degraded).toBeNull();
    expect(got.usage.hot_hits).toBeGreaterThan(0);
    expect(got.usage.shard_hits).toBeGreaterThan(0);
    expect(got.usage.cold_calls).toBeGreaterThan(0);
    // the backend saw only the picks neither the front nor a shard holds
    expect(got.usage.cold_calls).toBeLessThan(want.usage.cold_calls);
    expect(got.usage.shard_hits + got.usage.cold_calls).toBe(want.usage.cold_calls);
    expect(maxAbsDiff(got.rows, want.rows)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(got.rows, all.rows)).toBeLessThanOrEqual(1e-4);
  });

  it('every expert at the edge (front + shards): a generation completes with no backend, as the all-local model writes it', async () => {
    const body = { model: MODEL, prompt: 'Once upon a time', max_tokens: 16, temperature: 0 };
    const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
    const shardHits = async () => Number(/^moe_shard_hits_total (\d+)$/m.exec(await (await callWithEnv({}, '/metrics')).text())?.[1] ?? NaN);
    const before = await shardHits();
    const edge = await callWithEnv({ HOT_EXPERTS: frontHot(), BACKEND_URL: '', ...shardEnv('edge-only.json') } as never, '/v1/completions', init);
    const local = await callWithEnv({ HOT_EXPERTS: 'all', BACKEND_URL: '' }, '/v1/completions', init);
    expect(edge.status).toBe(200);
    expect(edge.headers.get('x-moe-degraded')).toBeNull();
    const got = (await edge.json()) as any;
    const want = (await local.json()) as any;
    expect(got.usage.moe).toMatchObject({ cold_calls: 0, degraded: null });
    expect(got.usage.moe.shard_hits).toBeGreaterThan(0);
    expect(got.choices[0].text).toBe(want.choices[0].text);
    expect((await shardHits()) - before).toBe(got.usage.moe.shard_hits); // /metrics counts them too
  });
});

describe('the embedding and output head on a shard', () => {
  it('the front holds no head; logits equal the all-local engine', async () => {
    const front = await loadModelFromR2({ ...env, HOT_EXPERTS: frontHot(), ...shardEnv('head.json') } as never);
    const local = await loadModelFromR2({ ...env, HOT_EXPERTS: 'all' });
    expect(front.weights.embed).toBeUndefined();
    expect(front.weights.output).toBeUndefined();
    expect(front.hot.bytes).toBeLessThan(local.hot.bytes - front.manifest.architecture.vocabSize * front.manifest.architecture.hiddenSize / 2);
    const tokens = front.encode('Once upon a time, the head of the model');
    const got = await splitLogits(front, tokens, remote, 8);
    const want = await splitLogits(local, tokens, remote, 8);
    expect(got.usage.degraded).toBeNull();
    expect(maxAbsDiff(got.rows, want.rows)).toBeLessThanOrEqual(1e-4);
  });

  it('sampling where the logits are: the same tokens as the all-local model, greedy and seeded at temperatures 0.9 (top-p 0.95) and 1.3', async () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 0.9, top_p: 0.95, seed: 11 }, { temperature: 1.3, top_p: 1, seed: 5 }]) {
      const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 24, ...sampling }) };
      const head = await callWithEnv({ HOT_EXPERTS: 'all', BACKEND_URL: '', ...shardEnv('head.json') } as never, '/v1/completions', init);
      const local = await callWithEnv({ HOT_EXPERTS: 'all', BACKEND_URL: '' }, '/v1/completions', init);
      expect(head.status).toBe(200);
      const got = (await head.json()) as any;
      expect(got.choices[0].text, JSON.stringify(sampling)).toBe(((await local.json()) as any).choices[0].text);
      expect(got.usage.completion_tokens).toBeGreaterThan(0);
    }
  });

  it('a head shard that dies mid-generation fails it with a clear 502 naming the shard (there is no head to fall back to)', async () => {
    const res = await callWithEnv({ HOT_EXPERTS: frontHot(), BACKEND_URL: '', COLD_POLICY: 'substitute', ...shardEnv('head-dies.json', [null, { after: arch.numLayers * 2, kind: 'close' }]) } as never, '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 }),
    });
    expect(res.status).toBe(502);
    expect(((await res.json()) as any).error).toMatchObject({ code: 'shard_unavailable', message: expect.stringMatching(/^expert shard: /) });
  });
});

describe('a failing shard degrades the generation, never a 500', () => {
  const complete = (layoutName: string, faults: Fault[], vars: Record<string, string> = {}) =>
    callWithEnv({ HOT_EXPERTS: frontHot(), BACKEND_URL: '', COLD_POLICY: 'substitute', ...shardEnv(layoutName, faults), ...vars } as never, '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 }),
    });
  // after the prefill's replies (one per layer) and a few decode steps
  const mid = () => arch.numLayers * 3;

  for (const kind of ['close', 'garbage'] as const) {
    it(`a shard that ${kind === 'close' ? 'dies' : 'answers garbage'} mid-generation: completed, flagged, its picks substituted`, async () => {
      const res = await complete(`fault-${kind}.json`, [{ after: mid(), kind }, null]);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-moe-degraded')).toBe(kind === 'close' ? 'unavailable' : 'protocol');
      const body = (await res.json()) as any;
      expect(body.usage.completion_tokens).toBe(12);
      expect(body.usage.moe.degraded).toBe(kind === 'close' ? 'unavailable' : 'protocol');
      expect(body.usage.moe.shard_hits).toBeGreaterThan(0);
    });
  }

  it('under DEGRADED_POLICY=error the failing shard fails the request with a clear 502', async () => {
    const res = await complete('fault-close.json', [{ after: mid(), kind: 'close' }, null], { DEGRADED_POLICY: 'error' });
    expect(res.status).toBe(502);
    const body = (await res.json()) as any;
    expect(body.error).toMatchObject({ code: 'shard_unavailable', message: expect.stringMatching(/^expert shard: connection closed/) });
  });

  it('the next request, on healthy shards, is served on new sockets and not degraded', async () => {
    const res = await complete('healthy.json', [null, null]);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-moe-degraded')).toBeNull();
    expect(((await res.json()) as any).usage.moe).toMatchObject({ degraded: null });
  });
});

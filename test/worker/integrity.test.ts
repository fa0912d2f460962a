// What the Worker reads from R2 is checked before use, and a broken model store gives a clear error that names
// the object, never garbage or a crash: a truncated trunk, an altered tokenizer file, an altered hot expert
// (500 shard_integrity); an object the manifest lists but R2 lacks, also one deleted while the model loads
// (500 model_object_missing); no manifest at all, as during an upload, which writes it last (503
// model_not_uploaded, served once the manifest lands); an R2 binding that throws or whose body breaks
// (503 model_store_unavailable). A failed load is not cached: the next request after a repair is served.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { ModelCache } from '../../src/runtime/model-cache';
import { expectOpenAIError } from './helpers';

const prefix = (id: string) => `${env.MODEL_PREFIX}/${id}/`;
let objects: Map<string, ArrayBuffer>; // the clean model: name -> bytes
let manifest: { objects: Record<string, { bytes: number; sha256: string }>; tokenizer: { json: string } };

beforeAll(async () => {
  objects = new Map();
  const from = prefix(env.MODEL_ID);
  for (const o of (await env.MODELS.list({ prefix: from })).objects) {
    if (o.key.endsWith('/hot-set.json')) continue;
    objects.set(o.key.slice(from.length), await (await env.MODELS.get(o.key))!.arrayBuffer());
  }
  manifest = JSON.parse(new TextDecoder().decode(objects.get('manifest.json')));
});

/** Seeds a copy of the model under `id`, with `change` applied to it (name -> new bytes, or null: absent). */
async function seed(id: string, change: Record<string, ((b: Uint8Array) => Uint8Array) | null> = {}): Promise<void> {
  for (const [name, bytes] of objects) {
    const edit = change[name];
    if (edit === null) continue;
    await env.MODELS.put(prefix(id) + name, edit ? edit(new Uint8Array(bytes.slice(0))) : bytes);
  }
}

const flipByte = (b: Uint8Array) => {
  b[b.length >> 1] ^= 0x40;
  return b;
};

/** The app over its own model cache (so no other test's cached model answers), with any env. */
function request(id: string, vars: Record<string, unknown> = {}, path = '/v1/completions'): Promise<Response> {
  const app = createApp(cache);
  const init = path === '/healthz' ? {} : { method: 'POST', body: JSON.stringify({ model: id, prompt: 'Once upon a time', max_tokens: 3 }) };
  return Promise.resolve(app.fetch(new Request(`http://worker${path}`, init), { ...env, MODEL_ID: id, ...vars }, createExecutionContext()));
}
const cache = new ModelCache(loadModelFromR2);

async function expectNamed(res: Response, status: number, code: string, object: string): Promise<string> {
  const e = await expectOpenAIError(res, status, { code, type: 'server_error' });
  expect(e.message).toContain(object);
  return e.message;
}

describe('objects that fail their SHA-256 check', () => {
  it('a truncated trunk.bin -> 500 shard_integrity naming it and both sizes; /healthz 503 says the same', async () => {
    await seed('truncated-trunk', { 'trunk.bin': (b) => b.subarray(0, b.length >> 1) });
    const size = manifest.objects['trunk.bin']!.bytes;
    const message = await expectNamed(await request('truncated-trunk'), 500, 'shard_integrity', 'trunk.bin');
    expect(message).toContain(`expected ${size} bytes`);
    expect(message).toContain(`got ${size >> 1} bytes`);
    const health = await request('truncated-trunk', {}, '/healthz');
    expect(health.status).toBe(503);
    expect(JSON.stringify(await health.json())).toContain('trunk.bin');
  });

  it('an altered tokenizer file -> 500 naming it', async () => {
    const name = manifest.tokenizer.json;
    await seed('altered-tokenizer', { [name]: (b) => new TextEncoder().encode(new TextDecoder().decode(b).replace('"', ' "')) });
    await expectNamed(await request('altered-tokenizer'), 500, 'shard_integrity', name);
  });

  it('an altered expert: 500 naming it when it is hot here; served when it is cold (the Worker never reads it)', async () => {
    await seed('altered-expert', { 'experts/1/3.bin': flipByte });
    await expectNamed(await request('altered-expert', { HOT_EXPERTS: '{"layers": {"1": [3]}}' }), 500, 'shard_integrity', 'experts/1/3.bin');
    const cold = await request('altered-expert', { HOT_EXPERTS: '{"layers": {"1": [2]}}', COLD_POLICY: 'substitute' });
    expect(cold.status).toBe(200);
  });
});

describe('a half-uploaded model is never served', () => {
  it('no manifest.json (objects present, upload under way) -> 503 model_not_uploaded; served once the manifest lands', async () => {
    await seed('uploading', { 'manifest.json': null });
    const message = await expectNamed(await request('uploading'), 503, 'model_not_uploaded', 'manifest.json');
    expect(message).toMatch(/model uploading is not uploaded/);
    expect((await request('uploading', {}, '/healthz')).status).toBe(503);
    await env.MODELS.put(`${prefix('uploading')}manifest.json`, objects.get('manifest.json')!);
    expect((await request('uploading')).status).toBe(200);
  });

  it('an object the manifest lists is missing -> 500 model_object_missing naming it', async () => {
    await seed('missing-config', { 'tokenizer_config.json': null });
    await expectNamed(await request('missing-config'), 500, 'model_object_missing', 'tokenizer_config.json');
    await seed('missing-expert', { 'experts/0/5.bin': null });
    await expectNamed(await request('missing-expert', { HOT_EXPERTS: 'all' }), 500, 'model_object_missing', 'experts/0/5.bin');
  });
});

/** env.MODELS, with `fault` deciding per key what a get() does instead of reading R2 (undefined: read it). */
function faultyBucket(fault: (key: string) => (() => Promise<unknown>) | undefined): R2Bucket {
  const real = env.MODELS;
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'get') {
        return (key: string, opts?: R2GetOptions) => {
          const f = fault(key);
          return f ? f() : target.get(key, opts);
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe('R2 read errors', () => {
  it('a get() that throws -> 503 model_store_unavailable naming the object; the next request, R2 healthy again, is served', async () => {
    await seed('r2-throws');
    let broken = true;
    const MODELS = faultyBucket((key) => (broken && key.endsWith('/trunk.bin') ? () => Promise.reject(new Error('We encountered an internal error. Please try again. (10001)')) : undefined));
    const message = await expectNamed(await request('r2-throws', { MODELS }), 503, 'model_store_unavailable', 'trunk.bin');
    expect(message).toContain('10001');
    broken = false;
    expect((await request('r2-throws', { MODELS })).status).toBe(200);
  });

  it('a body that breaks while being read -> 503 naming the object', async () => {
    await seed('r2-body-breaks');
    const MODELS = faultyBucket((key) =>
      key.endsWith('/tokenizer.json')
        ? async () => ({ ...(await env.MODELS.head(key)), arrayBuffer: () => Promise.reject(new Error('stream reset by peer')), text: () => Promise.reject(new Error('stream reset by peer')) })
        : undefined,
    );
    await expectNamed(await request('r2-body-breaks', { MODELS }), 503, 'model_store_unavailable', manifest.tokenizer.json);
  });

  it('an object deleted while the model loads -> 500 model_object_missing naming it', async () => {
    await seed('deleted-mid-load');
    const victim = `${prefix('deleted-mid-load')}experts/1/6.bin`;
    const MODELS = faultyBucket((key) => {
      if (!key.endsWith('/trunk.bin')) return undefined;
      // the trunk is read after the manifest and before the hot experts: delete one of those now
      return async () => {
        await env.MODELS.delete(victim);
        return env.MODELS.get(key);
      };
    });
    await expectNamed(await request('deleted-mid-load', { MODELS, HOT_EXPERTS: 'all' }), 500, 'model_object_missing', 'experts/1/6.bin');
  });
});

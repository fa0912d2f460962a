// The trunk streams from R2 into the heap inside workerd: R2's body is read in full chunks of what the planner counts
// for a load (LOAD_CHUNK_BYTES), the streamed digest is workerd's DigestStream, and an R2 body that breaks
// mid-trunk is a 503 naming trunk.bin, after which a healthy R2 serves the next request.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { ModelCache } from '../../src/runtime/model-cache';
import { readManifest, streamVerified } from '../../src/store/source';
import { r2Source } from '../../src/store/source-r2';
import { expectOpenAIError } from './helpers';

const LOAD_CHUNK_BYTES = 2 ** 20; // tools/placement.ts (not imported: it pulls the converter's config reader)

describe('trunk.bin from R2, streamed', () => {
  it("arrives in chunks of at most LOAD_CHUNK_BYTES and passes its digest check through DigestStream", async () => {
    const source = r2Source(env.MODELS, `${env.MODEL_PREFIX}/${env.MODEL_ID}`);
    const manifest = await readManifest(source);
    const sizes: number[] = [];
    await streamVerified(source, manifest, 'trunk.bin', (chunk) => void sizes.push(chunk.length));
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(manifest.objects['trunk.bin'].bytes);
    console.log(`trunk.bin (${manifest.objects['trunk.bin'].bytes} bytes) came in ${sizes.length} chunks, the largest ${Math.max(...sizes)} bytes`);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(LOAD_CHUNK_BYTES);
    // read into one reused buffer, filled each time (R2's own chunks are 4 KiB: thousands of ArrayBuffers of garbage)
    expect(sizes.length).toBe(Math.ceil(manifest.objects['trunk.bin'].bytes / LOAD_CHUNK_BYTES));
  });

  it('a body that breaks mid-trunk -> 503 model_store_unavailable naming trunk.bin; healthy again, the next request is served', async () => {
    let broken = true;
    const MODELS = new Proxy(env.MODELS, {
      get(target, prop) {
        if (prop !== 'get') {
          const v = Reflect.get(target, prop);
          return typeof v === 'function' ? v.bind(target) : v;
        }
        return async (key: string, opts?: R2GetOptions) => {
          const obj = await target.get(key, opts);
          if (!broken || !obj || !key.endsWith('/trunk.bin') || !('body' in obj)) return obj;
          const reader = obj.body.getReader();
          let sent = 0;
          const body = new ReadableStream<Uint8Array>({
            async pull(c) {
              const { done, value } = await reader.read();
              if (done || sent > 100_000) return c.error(new Error('stream reset by peer'));
              sent += value.length;
              c.enqueue(value);
            },
          });
          return new Proxy(obj, { get: (o, p) => (p === 'body' ? body : Reflect.get(o, p)) });
        };
      },
    });
    const cache = new ModelCache(loadModelFromR2);
    const request = () =>
      Promise.resolve(
        createApp(cache).fetch(
          new Request('http://worker/v1/completions', { method: 'POST', body: JSON.stringify({ model: env.MODEL_ID, prompt: 'Once upon a time', max_tokens: 3 }) }),
          { ...env, MODELS },
          createExecutionContext(),
        ),
      );
    const e = await expectOpenAIError(await request(), 503, { code: 'model_store_unavailable', type: 'server_error' });
    expect(e.message).toContain('trunk.bin');
    expect(e.message).toContain('stream reset by peer');
    broken = false;
    expect((await request()).status).toBe(200);
  });
});

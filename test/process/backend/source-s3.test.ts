// R2 through the S3 API (src/store/source-s3.ts) against a small S3-style HTTP server on loopback that serves
// this checkout's folders as a bucket: signed path-style GETs, ranges, missing objects; and the backend's
// `--model r2:<path>` loading a model that way. (R2 itself cannot run here; the server checks SigV4's shape.)
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectNotFoundError } from '../../../src/common/errors';
import { readManifest, readVerified, ShortReadError, streamVerified } from '../../../src/store/source';
import { s3Source } from '../../../src/store/source-s3';
import { startBackend } from '../../../tools/dev/backend';

const BUCKET = 'weights';
const KEY_ID = 'test-key-id';
let server: Server;
let endpoint: string;
const seen: { method: string; path: string; authorization: string; range?: string }[] = [];

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    seen.push({ method: req.method ?? '', path, authorization: req.headers.authorization ?? '', range: req.headers.range });
    if (!(req.headers.authorization ?? '').startsWith(`AWS4-HMAC-SHA256 Credential=${KEY_ID}/`) || !req.headers['x-amz-date']) {
      res.writeHead(403).end('<Error><Code>AccessDenied</Code></Error>');
      return;
    }
    const [, bucket, ...key] = path.split('/');
    let body: Buffer;
    try {
      if (bucket !== BUCKET || key.includes('..')) throw new Error('no');
      body = await readFile(join(process.cwd(), ...key));
    } catch {
      res.writeHead(404).end('<Error><Code>NoSuchKey</Code></Error>');
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m) {
      const [a, b] = [Number(m[1]), Math.min(Number(m[2]), body.length - 1)];
      if (a >= body.length) { res.writeHead(416).end(); return; }
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${body.length}` }).end(req.method === 'HEAD' ? undefined : body.subarray(a, b + 1));
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const source = (prefix = 'models/default', secret = 'secret') =>
  s3Source({ endpoint, bucket: BUCKET, prefix, accessKeyId: KEY_ID, secretAccessKey: secret, retries: 0 });

describe('s3Source', () => {
  it('reads and verifies a model through signed path-style GETs', async () => {
    const src = source();
    const m = await readManifest(src);
    const bytes = await readVerified(src, m, 'experts/1/3.bin');
    expect(bytes.length).toBe(m.objects['experts/1/3.bin'].bytes);
    expect(seen.at(-1)).toMatchObject({ method: 'GET', path: `/${BUCKET}/models/default/experts/1/3.bin` });
    expect(src.describe()).toBe(`s3://${BUCKET}/models/default`);
  });

  it('streams an object (the trunk load) with its digest checked on the way; a missing one is ObjectNotFoundError', async () => {
    const src = source();
    const m = await readManifest(src);
    const parts: Uint8Array[] = [];
    await streamVerified(src, m, 'trunk.bin', (chunk) => void parts.push(chunk.slice()));
    expect(Buffer.concat(parts)).toEqual(Buffer.from(await src.get('trunk.bin')));
    const missing = async () => {
      for await (const _ of src.stream('experts/9/9.bin'));
    };
    await expect(missing()).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  it('ranged reads, empty ranges, and reads past the end', async () => {
    const src = source('/models/default/');
    const whole = await src.get('trunk.bin');
    expect(Array.from(await src.getRange('trunk.bin', 100, 50))).toEqual(Array.from(whole.subarray(100, 150)));
    expect(seen.at(-1)?.range).toBe('bytes=100-149');
    expect((await src.getRange('trunk.bin', 5, 0)).length).toBe(0);
    await expect(src.getRange('trunk.bin', whole.length + 10, 4)).rejects.toBeInstanceOf(ShortReadError);
    await expect(src.getRange('trunk.bin', whole.length - 2, 4)).rejects.toBeInstanceOf(ShortReadError);
  });

  it('a missing object is ObjectNotFoundError; a refused signature is a clear error; unsafe names never leave', async () => {
    await expect(source().get('experts/9/9.bin')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(source().getRange('nope.bin', 0, 0)).rejects.toBeInstanceOf(ObjectNotFoundError);
    const denied = s3Source({ endpoint, bucket: BUCKET, prefix: 'models/default', accessKeyId: 'other', secretAccessKey: 's', retries: 0 });
    await expect(denied.get('manifest.json')).rejects.toThrow(/403/);
    const before = seen.length;
    await expect(source().get('../package.json')).rejects.toThrow(/plain relative path/);
    expect(seen.length).toBe(before);
  });
});

describe('gpu-backend --model r2:<path>', () => {
  it('loads its experts from R2 through the S3 API (env R2_*)', async () => {
    const b = await startBackend({
      model: 'r2:default',
      args: ['--threads', '1', '--layers', '1'],
      env: { R2_ENDPOINT: endpoint, R2_BUCKET: BUCKET, R2_PREFIX: 'models', R2_ACCESS_KEY_ID: KEY_ID, R2_SECRET_ACCESS_KEY: 'x' },
    });
    try {
      const h = await (await fetch(`${b.url}/healthz`)).json();
      expect(h).toMatchObject({ model: 'default', layers: [1, 1], loadedExperts: 8 });
      expect(b.log()).toContain(`s3://${BUCKET}/models/default`);
      expect(seen.some((s) => s.path === `/${BUCKET}/models/default/experts/1/7.bin`)).toBe(true);
      expect(seen.some((s) => s.path.startsWith(`/${BUCKET}/models/default/experts/0/`))).toBe(false); // only its range
    } finally {
      await b.stop();
    }
  });

  it('refuses to start without the R2 settings or without a token', async () => {
    await expect(startBackend({ model: 'r2:default', env: { R2_ENDPOINT: '' } })).rejects.toThrow(/R2_ENDPOINT/);
    await expect(startBackend({ token: '' })).rejects.toThrow(/BACKEND_TOKEN/);
  });
});

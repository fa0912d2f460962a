// The GPU backend process: it verifies every expert object against the manifest's SHA-256 before serving, so an
// altered, truncated or missing expert (or a missing manifest) stops it at start with an error naming the
// object, while a replica whose range leaves that expert out starts and serves. And its token never shows:
// wrong tokens on every protected route (POST, /metrics, WebSocket upgrade) are refused without echoing what
// was sent, and neither that nor the real token appears in a response or in the process's stdout/stderr.
import { cp, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBackend, type BackendProcess } from '../../../tools/dev/backend';
import { encodeActivations } from '../../../src/protocol/activations';
import { decodeFrame, encodeRequest } from '../../../src/protocol/expert-wire';
import { modelTagOf } from '../../../src/format/digest';

const MODEL = 'models/default';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-backend-hardening-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A copy of the model with `change` applied to one of its files. */
async function modelWith(name: string, change: (path: string) => Promise<void>): Promise<string> {
  const d = await mkdtemp(join(dir, 'model-'));
  await cp(MODEL, d, { recursive: true });
  await change(join(d, name));
  return d;
}

async function startFails(model: string, extra: string[] = []): Promise<string> {
  const err = await startBackend({ model, args: ['--threads', '1', ...extra], token: 't' }).then(
    async (b) => {
      await b.stop();
      return null;
    },
    (e: Error) => e.message,
  );
  expect(err, 'the backend started on a broken model').not.toBeNull();
  return err!;
}

describe('gpu-backend verifies its experts before serving', () => {
  const flip = async (p: string) => {
    const b = await readFile(p);
    b[b.length >> 1] ^= 0x01;
    await writeFile(p, b);
  };

  it('an altered expert: exits at start naming the object and its digest mismatch', async () => {
    const message = await startFails(await modelWith('experts/1/3.bin', flip));
    expect(message).toMatch(/model object experts\/1\/3\.bin failed its integrity check/);
    expect(message).toMatch(/exited \(1\)/);
  });

  it('a truncated expert names it with both sizes; a missing one names it too', async () => {
    const truncated = await startFails(await modelWith('experts/0/2.bin', (p) => truncate(p, 100)));
    expect(truncated).toMatch(/experts\/0\/2\.bin failed its integrity check: expected \d+ bytes .* got 100 bytes/);
    expect(await startFails(await modelWith('experts/1/7.bin', unlink))).toMatch(/model object experts\/1\/7\.bin not found/);
  });

  it('no manifest: a clear error, not a crash trace about undefined', async () => {
    expect(await startFails(await modelWith('manifest.json', unlink))).toMatch(/manifest\.json not found/);
  });

  it('a replica whose range leaves the altered expert out starts and serves its own', async () => {
    const d = await modelWith('experts/1/3.bin', flip);
    const b = await startBackend({ model: d, args: ['--threads', '1', '--experts', '4-7'], token: 't' });
    try {
      expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
    } finally {
      await b.stop();
    }
  });
});

/** A raw WebSocket upgrade request (fetch refuses Upgrade headers): the status and body of the refusal. */
function upgrade(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      headers: { ...headers, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('gpu-backend never echoes or logs a token', () => {
  const TOKEN = 'backend-secret-token-8Kq2';
  const WRONG = 'a-wrong-but-real-token-Xy7';
  let b: BackendProcess;
  let stdout = '';

  beforeAll(async () => {
    b = await startBackend({ model: MODEL, args: ['--threads', '1'], token: TOKEN });
    b.process.stdout!.on('data', (d: string) => (stdout += d));
  }, 60_000);
  afterAll(async () => {
    await b?.stop();
  });

  it('refuses wrong tokens on every protected route, and nothing it writes or answers contains a token', async () => {
    const tag = await modelTagOf(new Uint8Array(await readFile(join(MODEL, 'manifest.json'))));
    const H = JSON.parse(await readFile(join(MODEL, 'manifest.json'), 'utf8')).architecture.hiddenSize;
    const frame = encodeRequest({
      requestId: 1, modelTag: tag, combine: false, layer: 0, hidden: H, nTok: 1, tokens: [0], experts: [0], weights: [1],
      activations: encodeActivations(new Float32Array(H), 'q8_0'), resultDType: 'f32',
    });
    const answers: string[] = [];
    for (const authorization of [undefined, `Bearer ${WRONG}`, WRONG, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`]) {
      const headers: Record<string, string> = authorization ? { authorization } : {};
      const post = await fetch(`${b.url}/v1/experts`, { method: 'POST', headers, body: frame as Uint8Array<ArrayBuffer> });
      expect(post.status).toBe(401);
      const bytes = new Uint8Array(await post.arrayBuffer());
      expect(decodeFrame(bytes)).toMatchObject({ kind: 'error', code: 'unauthorized' });
      answers.push(new TextDecoder().decode(bytes));
      const metrics = await fetch(`${b.url}/metrics`, { headers });
      expect(metrics.status).toBe(401);
      answers.push(await metrics.text());
      const ws = await upgrade(`${b.url}/v1/experts/ws`, headers);
      expect(ws.status).toBe(401);
      answers.push(ws.body);
    }
    // garbage with the right token: refused, and the error path does not print the token either
    const bad = await fetch(`${b.url}/v1/experts`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: new Uint8Array(10) });
    expect(bad.status).toBe(400);
    answers.push(new TextDecoder().decode(new Uint8Array(await bad.arrayBuffer())));
    await b.stop(); // flush its output
    const output = stdout + b.log();
    expect(output).toMatch(/gpu-backend/); // it did write something
    for (const secret of [TOKEN, WRONG]) {
      expect(output.includes(secret), `the backend's output contains ${secret}`).toBe(false);
      for (const a of answers) expect(a.includes(secret), `a response contains ${secret}`).toBe(false);
    }
  });
});

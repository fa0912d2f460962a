// End to end: the server exactly as `npm start` runs it (tools/start.ts: seed local R2, the GPU backend,
// wrangler dev with half the experts hot), driven by the official `openai` SDK over loopback HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MODEL = 'default';
const READY_TIMEOUT_MS = 120_000;

let server: ChildProcess | undefined;
let output = '';
let persistDir = '';
let client: OpenAI;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(base: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server?.exitCode != null) throw new Error(`server exited with ${server.exitCode}:\n${output}`);
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.status === 200) return;
      if (res.status === 503) throw new Error(`model does not load: ${await res.text()}`);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith('model does not load')) throw e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`server not ready after ${READY_TIMEOUT_MS} ms:\n${output}`);
}

beforeAll(async () => {
  const port = await freePort();
  persistDir = await mkdtemp(join(tmpdir(), 'moe-edge-e2e-'));
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  // Own process group, so that afterAll stops start.ts, wrangler and workerd together. The kernels are
  // built by `npm test` before vitest starts, hence --skip-build.
  server = spawn(process.execPath, [tsx, 'tools/start.ts', '--port', String(port), '--persist-to', persistDir, '--skip-build'], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      WRANGLER_HIDE_BANNER: 'true',
      WRANGLER_SEND_ERROR_REPORTS: 'false',
    },
  });
  server.stdout!.on('data', (d) => (output += d));
  server.stderr!.on('data', (d) => (output += d));
  const base = `http://127.0.0.1:${port}`;
  await waitReady(base);
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'x', maxRetries: 0 });
}, READY_TIMEOUT_MS + 10_000);

afterAll(async () => {
  if (server?.pid && server.exitCode == null) {
    const exited = new Promise((r) => server!.once('exit', r));
    process.kill(-server.pid, 'SIGTERM');
    const timer = setTimeout(() => server?.pid && process.kill(-server.pid, 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  if (persistDir) await rm(persistDir, { recursive: true, force: true });
});

describe('openai SDK against npm start', () => {
  const messages = [{ role: 'user' as const, content: 'Say something about experts.' }];

  it('chat completion, then the same streamed with usage', async () => {
    const whole = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 8, temperature: 0 });
    expect(whole.id).toMatch(/^chatcmpl-/);
    expect(whole.choices[0]!.message.role).toBe('assistant');
    expect(typeof whole.choices[0]!.message.content).toBe('string');
    expect(whole.usage!.total_tokens).toBe(whole.usage!.prompt_tokens + whole.usage!.completion_tokens);

    const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let role: string | undefined;
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice) {
        role ??= choice.delta.role;
        text += choice.delta.content ?? '';
        finish = choice.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    const counts = (u: any) => ({ ...u, moe: { ...u.moe, remote_ms: 0, remote_wait_ms: 0 } });
    expect(counts(usage)).toEqual(counts(whole.usage));
  });

  it('runs the hot/cold split: cold experts on the GPU backend, nothing degraded', async () => {
    const { data, response } = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }).withResponse();
    expect(response.headers.get('x-moe-degraded')).toBeNull();
    const moe = (data.usage as unknown as { moe: Record<string, unknown> }).moe;
    expect(moe).toMatchObject({ policy: 'remote', degraded: null });
    expect(moe.hot_hits).toBeGreaterThan(0);
    expect(moe.cold_calls).toBeGreaterThan(0);
  });

  it('text completion', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 6, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(typeof r.choices[0]!.text).toBe('string');
    expect(['stop', 'length']).toContain(r.choices[0]!.finish_reason);
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(6);
  });

  it('models.list', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual([MODEL]);
  });

  it('errors surface as the SDK error classes with OpenAI fields', async () => {
    const notFound = await client.chat.completions.create({ model: 'no-such-model', messages }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect((notFound as InstanceType<typeof OpenAI.APIError>).code).toBe('model_not_found');

    const bad = await client.chat.completions.create({ model: MODEL, messages, temperature: 9 }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.APIError>).param).toBe('temperature');
  });
});

// Fuzz of the Worker's HTTP API inside workerd (fast-check, seeded): whatever a client sends (random JSON
// shapes and types, unicode, invalid UTF-8, huge numbers, deep nesting, oversized bodies, random routes,
// methods and headers), the answer is well formed: 2xx with a valid body or SSE stream, or a 4xx in
// OpenAI's error shape; never a 5xx, never a hang; and a valid request right after is served.
// Bounded for `npm test` (FUZZ_RUNS overrides: `npm run fuzz`); a copy of the model under its own id keeps
// the hot sets that PUT /admin/hot-set fuzzing stores away from other tests.
import { env } from 'cloudflare:workers';
import fc from 'fast-check';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { callWithEnv } from './helpers';
import { fuzzRequest, type FuzzRequest } from './fuzz-requests';

const FUZZ_MODEL = 'fuzz';
const settings = inject('fuzz');
const RUNS = settings.runs ?? 300;
// every generation is short, so thousands of runs stay within minutes (a fuzzed max_tokens still up to 24)
const VARS = { MODEL_ID: FUZZ_MODEL, MAX_COMPLETION_TOKENS: '24', BACKEND_TIMEOUT_MS: '5000' };
const ADMIN = inject('backend').adminToken;
const kinds = new Map<string, number>();
const statuses = new Map<number, number>();

beforeAll(async () => {
  const from = `${env.MODEL_PREFIX}/${env.MODEL_ID}/`;
  for (const o of (await env.MODELS.list({ prefix: from })).objects) {
    if (o.key.endsWith('/hot-set.json')) continue;
    const obj = await env.MODELS.get(o.key);
    await env.MODELS.put(`${env.MODEL_PREFIX}/${FUZZ_MODEL}/${o.key.slice(from.length)}`, await obj!.arrayBuffer());
  }
});

function send(r: FuzzRequest): Promise<Response> {
  return callWithEnv(VARS, r.path, { method: r.method, headers: r.headers, ...(r.body ? { body: r.body as Uint8Array<ArrayBuffer> } : {}) });
}

/** A hang is a failure too: no request may take longer than this (the fuzzed generations are short). */
async function withinDeadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within 20 s: ${what}`)), 20_000)));
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Throws (with the reason) unless `res` is a well-formed answer to a client's request. */
async function checkWellFormed(r: FuzzRequest, res: Response): Promise<void> {
  const where = `${r.method} ${r.path} -> ${res.status}`;
  if (res.status >= 500) throw new Error(`${where}: a client's input got a server error: ${await res.text()}`);
  if (r.method === 'HEAD') return;
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  if (res.status >= 400) {
    if (!type.startsWith('application/json')) throw new Error(`${where}: error with content-type ${type}`);
    const body = JSON.parse(text) as { error?: Record<string, unknown> };
    const e = body.error;
    const nullableString = (v: unknown) => v === null || typeof v === 'string';
    if (Object.keys(body).join() !== 'error' || !e || typeof e.message !== 'string' || typeof e.type !== 'string' || !nullableString(e.param) || !nullableString(e.code)) {
      throw new Error(`${where}: not an OpenAI error: ${text.slice(0, 300)}`);
    }
    if (e.message.length === 0 || e.message.length > 10_000) throw new Error(`${where}: error message of ${e.message.length} characters`);
    return;
  }
  if (type.startsWith('text/event-stream')) {
    const frames = text.split('\n\n');
    if (frames.pop() !== '') throw new Error(`${where}: stream does not end with a blank line`);
    if (frames.pop() !== 'data: [DONE]') throw new Error(`${where}: stream does not end with [DONE]: ${text.slice(-300)}`);
    for (const f of frames) {
      if (!f.startsWith('data: ')) throw new Error(`${where}: bad SSE frame ${f.slice(0, 100)}`);
      const event = JSON.parse(f.slice(6)) as Record<string, unknown>;
      if ('error' in event) throw new Error(`${where}: in-band error ${f}`);
    }
    return;
  }
  if (type.startsWith('application/json')) {
    const body = JSON.parse(text) as Record<string, unknown>;
    if (r.path.endsWith('completions') && r.method === 'POST' && !Array.isArray(body.choices)) throw new Error(`${where}: completion without choices: ${text.slice(0, 300)}`);
    return;
  }
  if (!/^text\/(plain|html)/.test(type)) throw new Error(`${where}: unexpected content-type ${type}`);
}

let nth = 0;
/** The property's second half: the Worker still serves a plain request, alternating the two routes. */
async function expectServesValid(): Promise<void> {
  const chat = nth++ % 2 === 0;
  const res = await withinDeadline(
    callWithEnv(VARS, chat ? '/v1/chat/completions' : '/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat ? { model: FUZZ_MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 } : { model: FUZZ_MODEL, prompt: 'Once', max_tokens: 2 }),
    }),
    'the valid request after',
  );
  if (res.status !== 200) throw new Error(`a valid request after the fuzzed one got ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { choices: unknown[]; usage: { completion_tokens: number } };
  if (body.choices.length !== 1 || !(body.usage.completion_tokens >= 1)) throw new Error(`a valid request after the fuzzed one: ${JSON.stringify(body)}`);
}

describe('HTTP API fuzz (workerd)', () => {
  it(
    `${RUNS} random requests: each gets a well-formed 2xx or OpenAI-shaped 4xx, and a valid request right after succeeds`,
    async () => {
      await fc.assert(
        fc.asyncProperty(fuzzRequest({ model: FUZZ_MODEL, maxBodyBytes: Number(env.MAX_BODY_BYTES), adminToken: ADMIN }), async (r) => {
          kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
          const res = await withinDeadline(send(r), `${r.method} ${r.path} (${r.kind})`);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          await checkWellFormed(r, res);
          await expectServesValid();
        }),
        { numRuns: RUNS, seed: settings.seed, endOnFailure: true },
      );
      // every kind of input was drawn (the counts go into the hardening report)
      console.log(`http fuzz: ${RUNS} requests by kind ${JSON.stringify(Object.fromEntries([...kinds].sort()))}, by status ${JSON.stringify(Object.fromEntries(statuses))}`);
      for (const k of ['json-shapes', 'huge-numbers', 'invalid-utf8', 'random-bytes', 'deep-nesting', 'routes-methods']) expect(kinds.get(k) ?? 0).toBeGreaterThan(0);
      expect(statuses.get(200) ?? 0).toBeGreaterThan(RUNS / 20); // the fuzz gets past validation into generation
    },
    Math.max(60_000, RUNS * 200),
  );
});

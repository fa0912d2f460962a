// Credentials on every protected route, enumerated from the app itself (so a route added later is covered):
// /v1/* takes an API_KEYS key, /admin* takes ADMIN_TOKEN; missing, wrong and the other kind of credential get
// 401 (admin routes without ADMIN_TOKEN configured: 403), the right one gets through. Only /healthz and
// /metrics are open. No secret (a key, the admin token, the backend token, or a wrong key a client sent,
// often a real key of something else) appears in any response body or log line.
import { env } from 'cloudflare:workers';
import { createExecutionContext } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createApp } from '../../src/app';
import { matchesAny } from '../../src/http/auth';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { ModelCache } from '../../src/runtime/model-cache';

const AUTH_MODEL = 'auth';
const KEYS = ['sk-moe-key-alpha-7Q2x', 'sk-moe-key-beta-9Lp0'];
const ADMIN = 'admin-secret-4f9c1e77';
const WRONG = 'sk-someone-elses-real-key-ZZ81';
const backend = inject('backend');
const SECRETS = [...KEYS, ADMIN, WRONG, backend.token];
const VARS = { MODEL_ID: AUTH_MODEL, API_KEYS: KEYS.join(','), ADMIN_TOKEN: ADMIN };

const app = createApp(new ModelCache(loadModelFromR2));
const bodies: string[] = [];
const logs: string[] = [];
const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((level) =>
  vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void logs.push(args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : String(a))).join(' '))),
);
afterAll(() => spies.forEach((s) => s.mockRestore()));

beforeAll(async () => {
  const from = `${env.MODEL_PREFIX}/${env.MODEL_ID}/`;
  for (const o of (await env.MODELS.list({ prefix: from })).objects) {
    if (o.key.endsWith('/hot-set.json')) continue;
    await env.MODELS.put(`${env.MODEL_PREFIX}/${AUTH_MODEL}/${o.key.slice(from.length)}`, await (await env.MODELS.get(o.key))!.arrayBuffer());
  }
});

type Kind = 'api' | 'admin' | 'open';
const kindOf = (path: string): Kind => (path.startsWith('/v1/') ? 'api' : path === '/admin' || path.startsWith('/admin/') ? 'admin' : 'open');
const routes = app.routes
  .filter((r) => r.method !== 'ALL')
  .map((r) => ({ method: r.method, path: r.path.replace(':id', AUTH_MODEL).replace(/:[a-z]+/gi, 'x'), kind: kindOf(r.path) }));

function bodyFor(method: string, path: string): string | undefined {
  if (path === '/v1/chat/completions') return JSON.stringify({ model: AUTH_MODEL, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 });
  if (path === '/v1/completions') return JSON.stringify({ model: AUTH_MODEL, prompt: 'Hi', max_tokens: 1 });
  if (path === '/admin/hot-set' && method === 'PUT') return JSON.stringify({ preset: '50%' });
  return method === 'GET' || method === 'HEAD' ? undefined : '{}';
}

async function send(method: string, path: string, authorization: string | null, vars: Record<string, string> = VARS): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization !== null) headers.authorization = authorization;
  const res = await app.fetch(new Request(`http://worker${path}`, { method, headers, body: bodyFor(method, path) }), { ...env, ...vars }, createExecutionContext());
  const text = await res.text();
  bodies.push(text);
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // /metrics is text, an admin page may be HTML
  }
  return { status: res.status, body };
}

describe('the routes the app serves', () => {
  it('are all either protected (/v1/*, /admin*) or one of the two open ones', () => {
    expect(routes.filter((r) => r.kind === 'api').length).toBeGreaterThanOrEqual(4);
    expect(routes.filter((r) => r.kind === 'admin').length).toBeGreaterThanOrEqual(2);
    expect(routes.filter((r) => r.kind === 'open').map((r) => r.path).sort()).toEqual(['/healthz', '/metrics']);
  });
});

describe.each(routes.filter((r) => r.kind === 'api'))('API_KEYS on $method $path', ({ method, path }) => {
  it('missing, malformed, wrong key or the admin token -> 401 invalid_api_key', async () => {
    for (const authorization of [null, '', 'Bearer', `Basic ${KEYS[0]}`, `Bearer ${WRONG}`, `Bearer ${KEYS[0]}x`, `Bearer ${KEYS[0]!.slice(0, -1)}`, `Bearer ${ADMIN}`, `Bearer ${'k'.repeat(8000)}`]) {
      const r = await send(method, path, authorization);
      expect(r.status, `${authorization}`).toBe(401);
      expect(r.body.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    }
  });

  it('each listed key gets through (any case of "Bearer", spaces around the key)', async () => {
    for (const authorization of [`Bearer ${KEYS[0]}`, `bearer   ${KEYS[1]} `]) {
      const r = await send(method, path, authorization);
      expect(r.status, `${authorization}: ${JSON.stringify(r.body)}`).toBeLessThan(400);
    }
  });
});

describe.each(routes.filter((r) => r.kind === 'admin'))('ADMIN_TOKEN on $method $path', ({ method, path }) => {
  it('missing, wrong token or an API key -> 401', async () => {
    for (const authorization of [null, 'Bearer', `Bearer ${WRONG}`, `Bearer ${ADMIN}x`, `Bearer ${KEYS[0]}`, `Basic ${ADMIN}`]) {
      const r = await send(method, path, authorization);
      expect(r.status, `${authorization}`).toBe(401);
      expect(r.body.error).toMatchObject({ type: 'authentication_error' });
    }
  });

  it('without ADMIN_TOKEN configured: 403 admin_disabled, whatever is sent', async () => {
    for (const authorization of [null, `Bearer ${ADMIN}`]) {
      const r = await send(method, path, authorization, { ...VARS, ADMIN_TOKEN: '' });
      expect(r.status).toBe(403);
      expect(r.body.error).toMatchObject({ code: 'admin_disabled', type: 'permission_error' });
    }
  });

  it('the admin token gets through', async () => {
    const r = await send(method, path, `Bearer ${ADMIN}`);
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(400);
  });
});

describe.each(routes.filter((r) => r.kind === 'open'))('open route $method $path', ({ method, path }) => {
  it('answers without credentials while API_KEYS and ADMIN_TOKEN are set', async () => {
    expect((await send(method, path, null)).status).toBe(200);
  });
});

describe('constant-time key matching', () => {
  it('matches exactly one of the keys, whatever the lengths and characters', async () => {
    expect(await matchesAny('a', ['a'])).toBe(true);
    expect(await matchesAny('b', ['a', 'b', 'c'])).toBe(true);
    expect(await matchesAny('', ['a'])).toBe(false);
    expect(await matchesAny('ab', ['a', 'abc'])).toBe(false);
    expect(await matchesAny('ключ🔑', ['ключ🔑'])).toBe(true);
    expect(await matchesAny('x', [])).toBe(false);
  });
});

describe('secrets never leave', () => {
  it('a wrong BACKEND_TOKEN fails the generation (502 backend_unauthorized) without echoing it', async () => {
    const wrongBackendToken = 'backend-token-that-is-wrong-Q7';
    SECRETS.push(wrongBackendToken);
    const r = await send('POST', '/v1/completions', `Bearer ${KEYS[0]}`, {
      ...VARS,
      HOT_EXPERTS: 'none',
      BACKEND_URL: backend.url,
      BACKEND_TOKEN: wrongBackendToken,
      DEGRADED_POLICY: 'error',
    });
    expect(r.status).toBe(502);
    expect(r.body.error.code).toBe('backend_unauthorized');
  });

  it('no response body and no log line above contains a key, a token, or the wrong key a client sent', () => {
    expect(bodies.length).toBeGreaterThan(routes.length * 3);
    for (const secret of SECRETS) {
      for (const b of bodies) expect(b.includes(secret), `a response contains ${secret}: ${b.slice(0, 200)}`).toBe(false);
      for (const l of logs) expect(l.includes(secret), `a log line contains ${secret}: ${l.slice(0, 200)}`).toBe(false);
    }
  });
});

// Test helpers inside workerd: requests through the Worker's own fetch, SSE parsing, OpenAI error checks.
import { env, exports } from 'cloudflare:workers';
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { expect } from 'vitest';
import worker from '../../src/worker';

export const MODEL = env.MODEL_ID;

/** Through the deployed entry (`exports.default`), exactly as a client reaches it. */
export function call(path: string, init?: RequestInit): Promise<Response> {
  return (exports as unknown as { default: Fetcher }).default.fetch(`http://worker${path}`, init);
}

export function postJson(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return call(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** The same Worker entry with some vars overridden (another MODEL_ID, API_KEYS), as `wrangler.toml` would set them. */
export async function callWithEnv(vars: Record<string, string>, path: string, init?: RequestInit): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://worker${path}`, init), { ...env, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** A greedy (temperature 0) request for a GreedyCase under `vars`: chat or completion as the case says. */
export function callGreedy(vars: Record<string, string>, g: { kind: string; input: string; maxTokens: number }, extra: object = {}): Promise<Response> {
  const [path, json] =
    g.kind === 'chat'
      ? ['/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: g.input }], max_tokens: g.maxTokens, temperature: 0 }]
      : ['/v1/completions', { model: MODEL, prompt: g.input, max_tokens: g.maxTokens, temperature: 0 }];
  return callWithEnv(vars, path as string, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...json, ...extra }) });
}

/** The generated text of a whole (non-streamed) answer of either kind. */
export const textOf = (kind: string, body: any): string => (kind === 'chat' ? body.choices[0].message.content : body.choices[0].text);

/** Parses an SSE body into its JSON events; checks the `data:` framing and the final `[DONE]`. */
export async function readSse(res: Response): Promise<any[]> {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const text = await res.text();
  const frames = text.split('\n\n');
  expect(frames.pop()).toBe(''); // every frame ends with a blank line
  expect(frames.at(-1)).toBe('data: [DONE]');
  return frames.slice(0, -1).map((f) => {
    expect(f.startsWith('data: ')).toBe(true);
    return JSON.parse(f.slice('data: '.length));
  });
}

export async function expectOpenAIError(res: Response, status: number, match: { code?: string | null; param?: string | null; type?: string } = {}) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toEqual({
    message: expect.any(String),
    type: match.type ?? expect.any(String),
    param: match.param === undefined ? expect.toSatisfy((v: unknown) => v === null || typeof v === 'string') : match.param,
    code: match.code === undefined ? expect.toSatisfy((v: unknown) => v === null || typeof v === 'string') : match.code,
  });
  return body.error as { message: string; type: string; param: string | null; code: string | null };
}

/** usage without the timings (remote_ms, remote_wait_ms), which differ from run to run. */
export function countsOf(usage: any): any {
  if (!usage?.moe) return usage;
  const { remote_ms, remote_wait_ms, ...moe } = usage.moe;
  expect(remote_ms).toBeGreaterThanOrEqual(0);
  expect(remote_wait_ms).toBeGreaterThanOrEqual(0);
  return { ...usage, moe };
}

// End to end: the server exactly as `npm start` runs it (tools/start.ts: seed local R2, the GPU backend,
// wrangler dev with half the experts hot), driven by the official `openai` SDK over loopback HTTP.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_TIMEOUT_MS, startServer, type StartedServer } from '../../helpers/npm-start';

const MODEL = 'default';

let server: StartedServer | undefined;
let client: OpenAI;

beforeAll(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: 'x', maxRetries: 0 });
}, READY_TIMEOUT_MS + 10_000);

afterAll(async () => {
  await server?.stop();
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

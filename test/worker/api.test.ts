// The OpenAI-compatible API through the Worker's fetch, in workerd, over the real model in local R2.
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { call, callWithEnv, countsOf, MODEL, postJson, readSse } from './helpers';

describe('discovery', () => {
  it('GET /healthz says the model loads', async () => {
    const res = await call('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok', model: { id: MODEL, loaded: true, context_length: expect.any(Number) } });
  });

  it('GET /v1/models lists the served model in OpenAI shape', async () => {
    const res = await call('/v1/models');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ object: 'list', data: [{ id: MODEL, object: 'model', created: expect.any(Number), owned_by: 'moe-edge' }] });
    const one = await call(`/v1/models/${MODEL}`);
    expect(await one.json()).toMatchObject({ id: MODEL, object: 'model' });
  });
});

describe('GET /metrics: WASM memory gauges', () => {
  const gauges = async (vars: Record<string, string>, model: string) => {
    const text = await (await callWithEnv(vars, '/metrics')).text();
    const value = (name: string) => Number(new RegExp(`^${name}\\{model="${model}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    return { memory: value('moe_wasm_memory_bytes'), used: value('moe_wasm_heap_used_bytes') };
  };

  it('reads 0 for the served model before it loads, and after a load that fails', async () => {
    expect(await gauges({ MODEL_ID: 'never-uploaded' }, 'never-uploaded')).toEqual({ memory: 0, used: 0 });
    expect((await callWithEnv({ MODEL_ID: 'never-uploaded' }, '/healthz')).status).toBe(503);
    expect(await gauges({ MODEL_ID: 'never-uploaded' }, 'never-uploaded')).toEqual({ memory: 0, used: 0 });
  });

  it('counts each load of a model: its kernels\' memory.buffer.byteLength and the allocator\'s bytes in use', async () => {
    expect((await callWithEnv({}, '/healthz')).status).toBe(200);
    const before = await gauges({}, MODEL);
    expect(before.memory).toBeGreaterThan(before.used);
    expect(before.memory % 65536).toBe(0); // whole WASM pages
    const model = await loadModelFromR2({ ...env, HOT_EXPERTS: 'none' });
    const heap = model.kernels.heap;
    const trunkBytes = model.manifest.objects['trunk.bin']!.bytes;
    expect(heap.usedBytes).toBeGreaterThanOrEqual(trunkBytes); // the trunk's quants, scales widened to f32
    const after = await gauges({}, MODEL);
    expect(after.memory - before.memory).toBe(heap.memory.buffer.byteLength);
    expect(after.used - before.used).toBe(heap.usedBytes);
  });
});

describe('POST /v1/completions', () => {
  it('answers a whole completion with usage', async () => {
    const res = await postJson('/v1/completions', { model: MODEL, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ object: 'text_completion', model: MODEL, created: expect.any(Number) });
    expect(body.id).toMatch(/^cmpl-/);
    expect(body.choices).toHaveLength(1);
    expect(body.choices[0]).toMatchObject({ index: 0, text: expect.any(String), finish_reason: expect.stringMatching(/^(stop|length)$/) });
    const u = body.usage;
    expect(u.prompt_tokens).toBeGreaterThan(0);
    expect(u.completion_tokens).toBeGreaterThan(0);
    expect(u.completion_tokens).toBeLessThanOrEqual(8);
    expect(u.total_tokens).toBe(u.prompt_tokens + u.completion_tokens);
    if (u.completion_tokens === 8) expect(body.choices[0].finish_reason).toBe('length');
  });

  it('accepts the prompt as an array of one string, and streams the same text', async () => {
    const whole = (await (await postJson('/v1/completions', { model: MODEL, prompt: ['Hello'], max_tokens: 6, temperature: 0 })).json()) as any;
    const events = await readSse(await postJson('/v1/completions', { model: MODEL, prompt: 'Hello', max_tokens: 6, temperature: 0, stream: true }));
    expect(events.every((e) => e.object === 'text_completion' && e.id === events[0].id)).toBe(true);
    expect(events.map((e) => e.choices[0].text).join('')).toBe(whole.choices[0].text);
    expect(events.at(-1).choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(events.slice(0, -1).every((e) => e.choices[0].finish_reason === null)).toBe(true);
  });
});

describe('POST /v1/chat/completions', () => {
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hi there' },
  ];

  it('answers a whole chat completion', async () => {
    const res = await postJson('/v1/chat/completions', { model: MODEL, messages, max_completion_tokens: 8, temperature: 0 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body).toMatchObject({ object: 'chat.completion', model: MODEL });
    expect(body.choices[0]).toMatchObject({ index: 0, message: { role: 'assistant', content: expect.any(String) }, finish_reason: expect.stringMatching(/^(stop|length)$/) });
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
  });

  it('streams chunks: role first, content deltas, finish_reason, usage chunk, [DONE]', async () => {
    const body = { model: MODEL, messages, max_tokens: 8, temperature: 0 };
    const whole = (await (await postJson('/v1/chat/completions', body)).json()) as any;
    const events = await readSse(await postJson('/v1/chat/completions', { ...body, stream: true, stream_options: { include_usage: true } }));
    expect(events.every((e) => e.object === 'chat.completion.chunk' && e.id === events[0].id && e.id.startsWith('chatcmpl-'))).toBe(true);
    expect(events[0].choices[0].delta.role).toBe('assistant');
    const usage = events.at(-1);
    expect(usage.choices).toEqual([]);
    expect(countsOf(usage.usage)).toEqual(countsOf(whole.usage));
    const choiceEvents = events.slice(0, -1);
    expect(choiceEvents.every((e) => e.usage === null)).toBe(true);
    const last = choiceEvents.at(-1);
    expect(last.choices[0].finish_reason).toBe(whole.choices[0].finish_reason);
    expect(choiceEvents.map((e) => e.choices[0].delta.content ?? '').join('')).toBe(whole.choices[0].message.content);
  });

  it('accepts text content parts and the moe extension', async () => {
    const res = await postJson('/v1/chat/completions', {
      model: MODEL,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi ' }, { type: 'text', text: 'there' }] }],
      max_tokens: 4,
      moe: { policy: 'drop', profile: 'prose' },
      seed: 7,
      top_k: 5,
      top_p: 0.9,
      temperature: 0.8,
    });
    expect(res.status).toBe(200);
  });

  it('is reproducible with a seed', async () => {
    const body = { model: MODEL, messages, max_tokens: 10, temperature: 1.5, seed: 1234 };
    const a = (await (await postJson('/v1/chat/completions', body)).json()) as any;
    const b = (await (await postJson('/v1/chat/completions', body)).json()) as any;
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
  });
});

describe('greedy output equals the CLI', () => {
  for (const g of inject('greedy')) {
    it(`${g.kind}: ${JSON.stringify(g.input)}`, async () => {
      const res =
        g.kind === 'chat'
          ? await postJson('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: g.input }], max_tokens: g.maxTokens, temperature: 0 })
          : await postJson('/v1/completions', { model: MODEL, prompt: g.input, max_tokens: g.maxTokens, temperature: 0 });
      const body = (await res.json()) as any;
      expect(g.kind === 'chat' ? body.choices[0].message.content : body.choices[0].text).toBe(g.text);
    });
  }

  it('a stop string ends the text before it, with finish_reason stop', async () => {
    const g = inject('greedy').find((x) => x.kind === 'completion')!;
    const stop = [...g.text].slice(3, 5).join(''); // two characters from inside the greedy text
    expect(stop.length).toBeGreaterThan(0);
    const res = await postJson('/v1/completions', { model: MODEL, prompt: g.input, max_tokens: g.maxTokens, temperature: 0, stop: [stop] });
    const body = (await res.json()) as any;
    expect(body.choices[0].text).toBe(g.text.slice(0, g.text.indexOf(stop)));
    expect(body.choices[0].finish_reason).toBe('stop');
  });

  it('two concurrent generations in one isolate each match their solo output', async () => {
    const chat = inject('greedy').find((g) => g.kind === 'chat');
    const completion = inject('greedy').find((g) => g.kind === 'completion');
    const [a, b] = await Promise.all([
      postJson('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: chat!.input }], max_tokens: chat!.maxTokens, temperature: 0, stream: true }),
      postJson('/v1/completions', { model: MODEL, prompt: completion!.input, max_tokens: completion!.maxTokens, temperature: 0, stream: true }),
    ]);
    const [ea, eb] = await Promise.all([readSse(a), readSse(b)]);
    expect(ea.map((e) => e.choices[0].delta.content ?? '').join('')).toBe(chat!.text);
    expect(eb.map((e) => e.choices[0].text).join('')).toBe(completion!.text);
  });
});

describe('n choices', () => {
  const body = (extra: Record<string, unknown>) => ({ model: MODEL, prompt: 'Once upon a time', max_tokens: 10, ...extra });

  it('completions: choice i is what one request with seed + i writes; the prompt is counted once, completions summed', async () => {
    const res = await postJson('/v1/completions', body({ n: 3, temperature: 1, seed: 40 }));
    expect(res.status).toBe(200);
    const got = (await res.json()) as any;
    expect(got.choices.map((c: any) => c.index)).toEqual([0, 1, 2]);
    const singles = [];
    for (let i = 0; i < 3; i++) singles.push((await (await postJson('/v1/completions', body({ temperature: 1, seed: 40 + i }))).json()) as any);
    singles.forEach((one, i) => expect(got.choices[i].text).toBe(one.choices[0].text));
    expect(new Set(singles.map((one) => one.choices[0].text)).size).toBeGreaterThan(1); // the seeds differ, so do the choices
    expect(got.usage.prompt_tokens).toBe(singles[0].usage.prompt_tokens);
    expect(got.usage.completion_tokens).toBe(singles.reduce((sum, one) => sum + one.usage.completion_tokens, 0));
  });

  it('chat: n greedy choices are n copies of the one answer, indexed', async () => {
    const res = await postJson('/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0, n: 2 });
    expect(res.status).toBe(200);
    const got = (await res.json()) as any;
    expect(got.choices).toHaveLength(2);
    expect(got.choices[1]).toMatchObject({ index: 1, message: { role: 'assistant', content: got.choices[0].message.content } });
  });

  it('streamed: each chunk names its choice; the texts and usage are the whole answer\'s', async () => {
    for (const path of ['/v1/completions', '/v1/chat/completions'] as const) {
      const req = path === '/v1/completions'
        ? body({ n: 3, temperature: 1, seed: 21 })
        : { model: MODEL, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 10, n: 3, temperature: 1, seed: 21 };
      const whole = (await (await postJson(path, req)).json()) as any;
      const events = await readSse(await postJson(path, { ...req, stream: true, stream_options: { include_usage: true } }));
      const texts = ['', '', ''];
      const finishes = [0, 0, 0];
      for (const e of events.slice(0, -1)) {
        const ch = e.choices[0];
        texts[ch.index] += path === '/v1/completions' ? ch.text : (ch.delta.content ?? '');
        if (ch.finish_reason) finishes[ch.index]++;
      }
      expect(finishes, path).toEqual([1, 1, 1]);
      expect(texts, path).toEqual(whole.choices.map((c: any) => (path === '/v1/completions' ? c.text : c.message.content)));
      expect(events.at(-1).usage, path).toMatchObject({ prompt_tokens: whole.usage.prompt_tokens, completion_tokens: whole.usage.completion_tokens });
    }
  });
});

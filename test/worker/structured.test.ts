// Structured output, tool calls and logprobs inside workerd: xgrammar loads there as a pre-compiled module
// (wasm/vendor-xgrammar.mjs) and constrains the real Worker's output; a schema it cannot enforce is a 400.
import { describe, expect, it } from 'vitest';
import { expectOpenAIError, MODEL, postJson, readSse } from './helpers';

const messages = [{ role: 'user', content: 'Describe a city.' }];
const schema = {
  type: 'object',
  properties: { name: { type: 'string', maxLength: 12 }, population: { type: 'integer', minimum: 0, maximum: 1000 }, kind: { enum: ['town', 'city'] } },
  required: ['name', 'population', 'kind'],
  additionalProperties: false,
};

describe('structured output in workerd', () => {
  it('json_schema strict: the reply parses and matches the schema', async () => {
    const res = await postJson('/v1/chat/completions', { model: MODEL, messages, max_tokens: 60, seed: 3, response_format: { type: 'json_schema', json_schema: { name: 'city', schema, strict: true } } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.choices[0].finish_reason).toBe('stop');
    const value = JSON.parse(body.choices[0].message.content);
    expect(Object.keys(value).sort()).toEqual(['kind', 'name', 'population']);
    expect(value.name.length).toBeLessThanOrEqual(12);
    expect(Number.isInteger(value.population) && value.population >= 0 && value.population <= 1000).toBe(true);
    expect(['town', 'city']).toContain(value.kind);
  });

  it('a forced tool call streams as tool_calls deltas with finish_reason tool_calls', async () => {
    const tools = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { id: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['id'], additionalProperties: false } } }];
    const events = await readSse(await postJson('/v1/chat/completions', { model: MODEL, messages, max_tokens: 40, stream: true, tools, tool_choice: { type: 'function', function: { name: 'lookup' } } }));
    const calls = events.flatMap((e) => e.choices[0]?.delta?.tool_calls ?? []);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'lookup' } });
    const args = JSON.parse(calls.map((c: any) => c.function.arguments ?? '').join(''));
    expect(args.id >= 1 && args.id <= 9).toBe(true);
    expect(events.at(-1).choices[0].finish_reason).toBe('tool_calls');
  });

  it('an unsupported schema keyword is a 400 naming its path', async () => {
    const res = await postJson('/v1/chat/completions', { model: MODEL, messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'array', uniqueItems: true } } } } } });
    await expectOpenAIError(res, 400, { param: 'response_format.json_schema.schema.properties.a.uniqueItems' });
  });

  it('logprobs come back in workerd too', async () => {
    const res = await postJson('/v1/completions', { model: MODEL, prompt: 'Once upon a time', max_tokens: 3, temperature: 0, logprobs: 2 });
    const body = (await res.json()) as any;
    expect(body.choices[0].logprobs.tokens.length).toBe(3);
    for (const v of body.choices[0].logprobs.token_logprobs) expect(v).toBeLessThanOrEqual(0);
  });
});

// Structured output on the default model: 100 random schemas from a stated family all give output that validates,
// json_object gives an object, and schemas or formats the grammar cannot enforce are 400s naming their place.
// Family (depth <= 2): objects of 1-4 required properties whose values are enums of 2-4 strings, integers and
// numbers with bounds, booleans, strings of at most 12 characters, arrays (0-3 items) of those, or nested objects.
// Each schema is a zod schema: z.toJSONSchema gives the request, zod's parse checks the answer (one source of truth).
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { seededRandom } from '../../../src/engine/sampler';
import { localApp, type LocalApp } from '../../helpers/local-app';

let app: LocalApp;
beforeAll(async () => {
  app = await localApp();
}, 60_000);

function randomSchema(rand: () => number, depth = 0): z.ZodType {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const leaf = (): z.ZodType => {
    switch (int(0, 4)) {
      case 0: {
        const words = ['red', 'green', 'blue', 'amber', 'teal'].slice(0, int(2, 4));
        return z.enum(words as [string, ...string[]]);
      }
      case 1: {
        const lo = int(-50, 50);
        return z.int().min(lo).max(lo + int(0, 200));
      }
      case 2: {
        const lo = int(-10, 10);
        return z.number().min(lo).max(lo + int(1, 100));
      }
      case 3:
        return z.boolean();
      default:
        return z.string().max(12);
    }
  };
  const kind = depth === 0 ? 5 : depth >= 2 ? 0 : int(0, 5);
  if (kind === 4) return z.array(depth >= 1 ? leaf() : randomSchema(rand, depth + 1)).min(0).max(3);
  if (kind === 5) {
    const shape: Record<string, z.ZodType> = {};
    for (let i = 0, n = int(1, 4); i < n; i++) shape[`f${i}`] = randomSchema(rand, depth + 1);
    return z.strictObject(shape);
  }
  return leaf();
}

describe('response_format json_schema', () => {
  it('100 random schemas of the family: every answer is complete JSON that validates', async () => {
    const rand = seededRandom(17);
    const failures: string[] = [];
    for (let i = 0; i < 100; i++) {
      const schema = randomSchema(rand);
      const json = z.toJSONSchema(schema);
      const r = await app.post('/v1/chat/completions', {
        model: 'default',
        messages: [{ role: 'user', content: 'Fill in the form.' }],
        max_tokens: 400,
        seed: i,
        response_format: { type: 'json_schema', json_schema: { name: `s${i}`, schema: json, strict: true } },
      });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      const choice = r.json.choices[0];
      let ok = choice.finish_reason === 'stop';
      try {
        ok &&= schema.safeParse(JSON.parse(choice.message.content)).success;
      } catch {
        ok = false;
      }
      if (!ok) failures.push(`${JSON.stringify(json)} -> ${choice.finish_reason}: ${choice.message.content}`);
    }
    expect(failures).toEqual([]);
  }, 300_000);

  it('json_object answers a JSON object', async () => {
    const r = await app.post('/v1/chat/completions', { model: 'default', messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 200, seed: 1, response_format: { type: 'json_object' } });
    expect(r.status).toBe(200);
    if (r.json.choices[0].finish_reason === 'stop') expect(typeof JSON.parse(r.json.choices[0].message.content)).toBe('object');
    else expect(r.json.choices[0].message.content.startsWith('{')).toBe(true);
  });

  it('streams the same constrained text as the whole answer (same seed)', async () => {
    const schema = z.toJSONSchema(z.strictObject({ a: z.enum(['x', 'y']), b: z.int().min(0).max(9) }));
    const body = { model: 'default', messages: [{ role: 'user', content: 'go' }], max_tokens: 60, seed: 5, response_format: { type: 'json_schema', json_schema: { name: 'ab', schema, strict: true } } };
    const whole = (await app.post('/v1/chat/completions', body)).json.choices[0].message.content;
    const streamed = (await app.post('/v1/chat/completions', { ...body, stream: true })).text;
    const text = streamed.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe(whole);
    expect(JSON.parse(whole)).toMatchObject({ a: expect.any(String), b: expect.any(Number) });
  });

  it('/v1/completions takes response_format too (as vLLM does), with logprobs of the constrained tokens', async () => {
    const schema = z.strictObject({ ok: z.boolean(), n: z.int().min(1).max(5) });
    const r = await app.post('/v1/completions', { model: 'default', prompt: 'Result:', max_tokens: 40, seed: 3, logprobs: 1, response_format: { type: 'json_schema', json_schema: { name: 'r', schema: z.toJSONSchema(schema), strict: true } } });
    expect(r.status).toBe(200);
    expect(schema.safeParse(JSON.parse(r.json.choices[0].text)).success).toBe(true);
    expect(r.json.choices[0].logprobs.tokens.join('')).toBe(r.json.choices[0].text);
  });

  it('unsupported or malformed schemas are 400s naming where', async () => {
    const cases: [unknown, string][] = [
      [{ type: 'array', uniqueItems: true }, 'response_format.json_schema.schema.uniqueItems'],
      [{ type: 'object', properties: { a: { not: { type: 'string' } } } }, 'response_format.json_schema.schema.properties.a.not'],
      [{ type: 'string', format: 'credit-card' }, 'response_format.json_schema.schema.format'],
      [{ type: 'strin' }, 'response_format.json_schema.schema.type'],
      [{ type: 'integer', minimum: 5, maximum: 1 }, 'response_format.json_schema.schema.minimum'],
    ];
    for (const [schema, param] of cases) {
      const r = await app.post('/v1/chat/completions', { model: 'default', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'json_schema', json_schema: { name: 'bad', schema } } });
      expect(r.status).toBe(400);
      expect(r.json.error.param).toBe(param);
    }
    const r = await app.post('/v1/chat/completions', { model: 'default', messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toMatch(/^response_format/);
  });
});

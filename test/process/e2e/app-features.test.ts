// End to end against `npm start` with the clients applications use: the official `openai` SDK (logprobs whole and
// streamed, a required tool call, strict json_schema) and the Vercel AI SDK over @ai-sdk/openai-compatible
// (generateObject with a zod schema, a tool call round trip). The default model is tiny: schemas are bounded so
// that every constrained answer completes within max_tokens.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject, generateText, stepCountIs, tool } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
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

const messages = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];

describe('openai SDK: logprobs, tools, structured output', () => {
  it('chat logprobs whole and streamed agree', async () => {
    const body = { model: MODEL, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 };
    const whole = await client.chat.completions.create(body);
    const content = whole.choices[0]!.logprobs!.content!;
    expect(content.length).toBe(whole.usage!.completion_tokens);
    for (const t of content) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(3);
    }
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(streamed.map((t) => t.token)).toEqual(content.map((t) => t.token));
    streamed.forEach((t, i) => expect(t.logprob).toBeCloseTo(content[i]!.logprob, 5)); // same model, same positions
  });

  it('completions echo + logprobs score the prompt', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'The dragon slept.', max_tokens: 0, echo: true, logprobs: 1 });
    expect(r.choices[0]!.text).toBe('The dragon slept.');
    expect(r.choices[0]!.logprobs!.token_logprobs![0]).toBeNull();
    expect(r.choices[0]!.logprobs!.token_logprobs!.slice(1).every((v) => v! < 0)).toBe(true);
  });

  it("tool_choice 'required' returns a valid call", async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 16 } }, required: ['city'], additionalProperties: false } } },
    ];
    const r = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice: 'required', parallel_tool_calls: false, max_tokens: 120 });
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    const call = r.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe('get_weather');
    expect(typeof JSON.parse(call.function.arguments).city).toBe('string');
  });

  it('json_schema strict returns an object that validates', async () => {
    const Schema = z.strictObject({ city: z.string().max(12), temperature: z.int().min(-30).max(50), sky: z.enum(['clear', 'cloudy', 'rain']) });
    const r = await client.chat.completions.create({
      model: MODEL,
      messages,
      max_tokens: 60,
      response_format: { type: 'json_schema', json_schema: { name: 'weather', schema: z.toJSONSchema(Schema) as Record<string, unknown>, strict: true } },
    });
    expect(Schema.safeParse(JSON.parse(r.choices[0]!.message.content!)).success).toBe(true);
  });
});

describe('Vercel AI SDK over @ai-sdk/openai-compatible', () => {
  const provider = () => createOpenAICompatible({ name: 'moe-edge', baseURL: `${server!.base}/v1`, apiKey: 'x', supportsStructuredOutputs: true });

  it('generateObject with a zod schema', async () => {
    const schema = z.object({ name: z.string().max(12), age: z.number().int().min(0).max(120), likes: z.array(z.enum(['tea', 'cake', 'maps'])).max(3) });
    const { object } = await generateObject({ model: provider()(MODEL), schema, prompt: 'Invent a person.', maxOutputTokens: 80, maxRetries: 0 });
    expect(schema.parse(object)).toEqual(object);
  });

  it('a tool call round trip: the model calls, the SDK runs the tool and sends the result back', async () => {
    const seen: { a: number; b: number }[] = [];
    const add = tool({
      description: 'Adds two numbers',
      inputSchema: z.object({ a: z.number().int().min(0).max(99), b: z.number().int().min(0).max(99) }),
      execute: async ({ a, b }) => {
        seen.push({ a, b });
        return { sum: a + b };
      },
    });
    const r = await generateText({
      model: provider()(MODEL),
      tools: { add },
      prompt: 'What is 2 + 3?',
      maxOutputTokens: 120,
      maxRetries: 0,
      stopWhen: stepCountIs(2),
      prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? 'required' : 'none' }),
    });
    expect(seen).toHaveLength(1);
    expect(r.steps).toHaveLength(2);
    expect(r.steps[0]!.toolCalls[0]!.toolName).toBe('add');
    expect(r.steps[0]!.toolResults[0]!.output).toEqual({ sum: seen[0]!.a + seen[0]!.b });
    expect(typeof r.text).toBe('string'); // the second step answered after the tool result went back through the template
  });
});

// Tool calls on the default model (its template has no tool syntax: the tools are described in a system message and
// calls are bare JSON): forced calls are valid calls of an offered function, whole and streamed; the history of
// calls and results goes back through the template; bad tool input is a 400 naming the field. The three reply
// formats (hermes, granite, json) are parsed as their templates write them.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { HfTextCodec } from '../../../src/engine/tokenizer';
import { parseToolCalls, ToolCallStream, toolCallFormatOf } from '../../../src/grammar/tool-formats';
import { templateMessages, toolPlan } from '../../../src/routes/chat-tools';
import { ChatCompletionRequestSchema } from '../../../src/schemas/chat';
import { localApp, sseEvents, type LocalApp } from '../../helpers/local-app';

let app: LocalApp;
beforeAll(async () => {
  app = await localApp();
}, 60_000);

const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 16 }, unit: { enum: ['C', 'F'] } }, required: ['city', 'unit'], additionalProperties: false } } };
const add = { type: 'function', function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 99 }, b: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['a', 'b'], additionalProperties: false } } };
const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];

function checkCall(call: any) {
  expect(call.id).toMatch(/^call_/);
  expect(call.type).toBe('function');
  const args = JSON.parse(call.function.arguments);
  if (call.function.name === 'get_weather') {
    expect(typeof args.city === 'string' && args.city.length <= 16).toBe(true);
    expect(['C', 'F']).toContain(args.unit);
  } else {
    expect(call.function.name).toBe('add');
    expect(Number.isInteger(args.a) && Number.isInteger(args.b)).toBe(true);
  }
}

describe('tool calls', () => {
  it("tool_choice 'required': valid calls of offered functions, finish_reason tool_calls (several seeds)", async () => {
    for (let seed = 0; seed < 5; seed++) {
      const r = await app.post('/v1/chat/completions', { model: 'default', messages, tools: [weather, add], tool_choice: 'required', max_tokens: 200, seed });
      expect(r.status).toBe(200);
      const choice = r.json.choices[0];
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.tool_calls.length).toBeGreaterThanOrEqual(1);
      choice.message.tool_calls.forEach(checkCall);
    }
  });

  it('a named function with parallel_tool_calls false: exactly one call of it; streamed as deltas', async () => {
    const body = { model: 'default', messages, tools: [weather, add], tool_choice: { type: 'function', function: { name: 'add' } }, parallel_tool_calls: false, max_tokens: 60, seed: 2 };
    const whole = (await app.post('/v1/chat/completions', body)).json.choices[0];
    expect(whole.message.tool_calls).toHaveLength(1);
    checkCall(whole.message.tool_calls[0]);
    const events = sseEvents((await app.post('/v1/chat/completions', { ...body, stream: true })).text);
    const deltas = events.flatMap((e) => e.choices[0]?.delta?.tool_calls ?? []);
    expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'add', arguments: '' } });
    expect(deltas.map((d: any) => d.function.arguments).join('')).toBe(whole.message.tool_calls[0].function.arguments);
    expect(events.at(-1).choices[0].finish_reason).toBe('tool_calls');
  });

  it('a conversation with a call and its result goes back through the template', async () => {
    const history = [
      ...messages,
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"C"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 21}' },
    ];
    const r = await app.post('/v1/chat/completions', { model: 'default', messages: history, tools: [weather], max_tokens: 5, temperature: 0 });
    expect(r.status).toBe(200);
    const plain = await app.post('/v1/chat/completions', { model: 'default', messages, tools: [weather], max_tokens: 5, temperature: 0 });
    expect(r.json.usage.prompt_tokens).toBeGreaterThan(plain.json.usage.prompt_tokens + 10); // the call and its result are in the prompt
  });

  it("tool_choice 'auto' streamed: a reply that is not a call streams as content, the same text as whole", async () => {
    const body = { model: 'default', messages, tools: [weather], tool_choice: 'auto', max_tokens: 12, temperature: 0 };
    const whole = (await app.post('/v1/chat/completions', body)).json.choices[0];
    expect(whole.finish_reason).not.toBe('tool_calls'); // the tiny model writes prose unless forced
    const events = sseEvents((await app.post('/v1/chat/completions', { ...body, stream: true })).text);
    const pieces = events.map((e) => e.choices[0]?.delta?.content ?? '').filter((t) => t !== '');
    expect(pieces.join('')).toBe(whole.message.content);
    expect(pieces.length).toBeGreaterThan(1); // streamed as it came, not held to the end
  });

  it("tool_choice 'none' or no tools: plain content", async () => {
    const r = await app.post('/v1/chat/completions', { model: 'default', messages, tools: [weather], tool_choice: 'none', max_tokens: 5 });
    expect(r.status).toBe(200);
    expect(r.json.choices[0].message.tool_calls).toBeUndefined();
    expect(typeof r.json.choices[0].message.content).toBe('string');
  });

  it('bad input is a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice.function.name'],
      [{ tool_choice: 'required' }, 'tool_choice'],
      [{ messages: [...messages, { role: 'tool', tool_call_id: 'call_x', content: '1' }], tools: [weather] }, 'messages[1].tool_call_id'],
      [{ messages: [...messages, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'add', arguments: '{bad' } }] }] }, 'messages[1].tool_calls[0].function.arguments'],
      [{ tools: [{ type: 'function', function: { name: 'bad name!' } }] }, 'tools[0].function.name'],
      [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string', contentEncoding: 'base64' } } } } }], tool_choice: 'required' }, 'tools[0].function.parameters.properties.a.contentEncoding'],
    ];
    for (const [extra, param] of cases) {
      const r = await app.post('/v1/chat/completions', { model: 'default', messages, max_tokens: 5, ...extra });
      expect(r.status, JSON.stringify(extra)).toBe(400);
      expect(r.json.error.param).toBe(param);
    }
  });
});

describe('tool-call formats by template family', () => {
  it('a template with tool syntax gets `tools`, and assistant calls (arguments parsed) and tool results from the history', () => {
    const read = (f: string) => JSON.parse(readFileSync(`models/default/${f}`, 'utf8'));
    const template =
      '{% for t in tools %}[tool {{ t.function.name }}]{% endfor %}{% for m in messages %}{% if m.tool_calls %}{% for c in m.tool_calls %}' +
      '<tool_call>{{ c.function.name }} {{ c.function.arguments.city }}</tool_call>{% endfor %}{% else %}<{{ m.role }}{% if m.tool_call_id %} {{ m.tool_call_id }}{% endif %}>{{ m.content }}{% endif %}{% endfor %}';
    const codec = new HfTextCodec({ json: read('tokenizer.json'), config: read('tokenizer_config.json') }, template, { id: 1, add: false });
    const body = ChatCompletionRequestSchema.parse({
      model: 'default',
      tools: [weather],
      messages: [...messages, { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","unit":"C"}' } }] }, { role: 'tool', tool_call_id: 'call_1', content: '21' }],
    });
    const plan = toolPlan(body, { chatTemplate: template });
    expect(plan.format).toBe('hermes');
    const text = codec.decode(codec.encodeChat(templateMessages(body, plan, template), { tools: plan.tools }));
    expect(text).toBe('[tool get_weather]<user>What is the weather in Paris?<tool_call>get_weather Paris</tool_call><tool call_1>21');
  });

  it('recognises the family from the template, the manifest overriding it', () => {
    expect(toolCallFormatOf({ chatTemplate: '{{ "<tool_call>" }}' })).toBe('hermes');
    expect(toolCallFormatOf({ chatTemplate: "{{ '<|tool_call|>' }}" })).toBe('granite');
    expect(toolCallFormatOf({ chatTemplate: '{{ messages }}' })).toBe('json');
    expect(toolCallFormatOf({ chatTemplate: '<tool_call>', toolCallFormat: 'granite' })).toBe('granite');
  });

  it('streams what cannot be a call: text before a marker (a split marker held back), not a reply that opens JSON', () => {
    const hermes = new ToolCallStream('hermes');
    expect(hermes.push('Sure, ')).toBe('Sure, ');
    expect(hermes.push('let me <tool')).toBe('let me ');
    expect(hermes.push('_call>{"name": "f"')).toBe('');
    expect(hermes.push(', "arguments": {}}</tool_call>')).toBe('');
    expect(hermes.end().text).toBe('Sure, let me <tool_call>{"name": "f", "arguments": {}}</tool_call>');
    const prose = new ToolCallStream('hermes');
    expect(prose.push('a <b')).toBe('a <b');
    expect(prose.push('>c <')).toBe('>c ');
    expect(prose.end().unsent).toBe('<');
    const json = new ToolCallStream('json');
    expect(json.push('  ')).toBe('');
    expect(json.push('{"name"')).toBe('');
    expect(json.end().unsent).toBe('  {"name"');
    const text = new ToolCallStream('json');
    expect(text.push(' Hello')).toBe(' Hello');
    expect(text.push(' {x}')).toBe(' {x}');
  });

  it('parses each format, keeping the text around the calls, and leaves broken JSON as content', () => {
    expect(parseToolCalls('hermes', 'Sure.\n<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>{"name": "g", "arguments": {}}</tool_call>')).toEqual({
      calls: [{ name: 'f', arguments: { x: 1 } }, { name: 'g', arguments: {} }],
      content: 'Sure.',
    });
    expect(parseToolCalls('granite', '<|tool_call|>[{"name": "f", "arguments": {"x": 1}}]')).toEqual({ calls: [{ name: 'f', arguments: { x: 1 } }], content: '' });
    expect(parseToolCalls('json', '{"name": "f", "arguments": {"x": 1}}')).toEqual({ calls: [{ name: 'f', arguments: { x: 1 } }], content: '' });
    expect(parseToolCalls('hermes', '<tool_call>{"name": "f", "argu</tool_call>')).toBeNull();
    expect(parseToolCalls('json', 'just words')).toBeNull();
  });
});

// fast-check arbitraries of HTTP requests a hostile or broken client may send to the Worker: random JSON
// shapes and types in every OpenAI field, unicode (lone surrogates, control and template characters), invalid
// UTF-8 bytes, huge and non-finite number literals, deep nesting, oversized bodies, random methods, routes and
// headers. Near-valid requests are common, so the fuzz reaches past the schema into tokenising and generating.
import fc from 'fast-check';
import { concatBytes } from '../../src/common/bytes';

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** null: no body */
  body: Uint8Array | null;
  /** what kind of input this is (for the counts in the report) */
  kind: string;
}

const enc = new TextEncoder();

// a UTF-16 code unit, so lone surrogates appear (the 'binary' unit never yields half a pair)
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const tricky = fc.constantFrom(
  '', ' ', '\u0000', '\ud800', '\udfff', '\ufeff', '\u202e', '\r\n', '<|assistant|>', '<|end|>', '<s>', '</s>',
  '{{ raise_exception("x") }}', '{%', '%}', '{{', '\\', '"', 'null', '[DONE]', 'data: ', '\u{1f600}'.repeat(20),
);
export const weirdString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 48 }) },
  { weight: 2, arbitrary: fc.string({ unit: codeUnit, maxLength: 24 }) },
  { weight: 2, arbitrary: tricky },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.tuple(tricky, fc.integer({ min: 1, max: 400 })).map(([s, n]) => (s || 'ab ').repeat(n)) },
);
const weirdNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, -1, 0.5, 1.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, 5e-324, Number.MAX_VALUE),
);
const anyJson = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' });
const anything: fc.Arbitrary<unknown> = fc.oneof(weirdNumber, weirdString, fc.boolean(), fc.constant(null), anyJson, fc.array(weirdString, { maxLength: 6 }));

/** Usually a valid value, sometimes anything at all. */
function field<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: anything });
}

const content = fc.oneof(
  weirdString,
  fc.array(fc.record({ type: field(fc.constant('text')), text: field(weirdString) }, { requiredKeys: ['type', 'text'] }), { maxLength: 3 }),
  fc.constant(null),
);
const message = fc.record(
  { role: field(fc.constantFrom('system', 'user', 'assistant', 'tool', 'developer')), content: field(content), name: field(weirdString) },
  { requiredKeys: ['role', 'content'] },
);

function generationFields(model: string) {
  return {
    model: fc.oneof({ weight: 6, arbitrary: fc.constant<unknown>(model) }, { weight: 1, arbitrary: anything }),
    max_tokens: field(fc.integer({ min: 1, max: 24 })),
    max_completion_tokens: field(fc.integer({ min: 1, max: 24 })),
    temperature: field(fc.double({ min: 0, max: 2, noNaN: true })),
    top_p: field(fc.double({ min: 0.01, max: 1, noNaN: true })),
    top_k: field(fc.nat({ max: 1000 })),
    seed: field(fc.integer()),
    stop: field(fc.oneof(weirdString, fc.array(weirdString, { maxLength: 5 }))),
    n: field(fc.constant(1)),
    stream: field(fc.boolean()),
    stream_options: field(fc.record({ include_usage: field(fc.boolean()) }, { requiredKeys: [] })),
    moe: field(fc.record({ policy: field(fc.constantFrom('remote', 'substitute', 'drop')), profile: field(weirdString) }, { requiredKeys: [] })),
  };
}

/** A chat or completion request object: the right keys with mostly valid values, a few extra keys. */
function requestObject(model: string, route: 'chat' | 'completion'): fc.Arbitrary<Record<string, unknown>> {
  const own: Record<string, fc.Arbitrary<unknown>> =
    route === 'chat'
      ? { messages: field(fc.array(message, { minLength: 1, maxLength: 4 })) }
      : { prompt: field(fc.oneof(weirdString, fc.array(weirdString, { maxLength: 2 }))) };
  const fields: Record<string, fc.Arbitrary<unknown>> = { ...generationFields(model), ...own };
  const core: fc.Arbitrary<Record<string, unknown>> = fc.record(fields, { requiredKeys: ['model', route === 'chat' ? 'messages' : 'prompt'] });
  return fc.tuple(core, fc.dictionary(weirdString, anything, { maxKeys: 3 })).map(([c, extra]) => ({ ...extra, ...c }));
}

/** JSON text of `obj` with one number literal JSON.stringify cannot write: 1e999 parses to Infinity, long digit runs lose precision. */
const hugeLiteral = fc.constantFrom('1e999', '-1e999', '123456789012345678901234567890', '-0.0000000000000000000001e-400', '9007199254740993');
function withLiteral(obj: Record<string, unknown>, key: string, literal: string): string {
  return JSON.stringify({ ...obj, [key]: '__LITERAL__' }).replace('"__LITERAL__"', literal);
}

const json = (text: string) => enc.encode(text);
const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);

/** Bodies for a POST completion route. */
function body(model: string, route: 'chat' | 'completion', maxBodyBytes: number): fc.Arbitrary<{ body: Uint8Array | null; kind: string }> {
  const obj = requestObject(model, route);
  const textKey = route === 'chat' ? 'messages' : 'prompt';
  return fc.oneof(
    { weight: 10, arbitrary: obj.map((o) => ({ body: json(JSON.stringify(o)), kind: 'json-shapes' })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(obj, fc.constantFrom('max_tokens', 'temperature', 'seed', 'top_k', 'top_p', 'n'), hugeLiteral)
        .map(([o, k, lit]) => ({ body: json(withLiteral(o, k, lit)), kind: 'huge-numbers' })),
    },
    {
      weight: 2,
      // invalid UTF-8 inside a string: decoded as U+FFFD, so this is a valid request of odd text
      arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => ({
        body: concat(json(`{"model":${JSON.stringify(model)},"max_tokens":4,`), json(route === 'chat' ? '"messages":[{"role":"user","content":"' : '"prompt":"'),
          bytes.map((b) => (b === 0x22 || b === 0x5c ? 0xc0 : b | 0x80)), json(route === 'chat' ? '"}]}' : '"}')),
        kind: 'invalid-utf8',
      })),
    },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => ({ body: b, kind: 'random-bytes' })) },
    { weight: 1, arbitrary: anyJson.map((v) => ({ body: json(JSON.stringify(v) ?? 'null'), kind: 'json-any' })) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 1, max: 60_000 }), fc.constantFrom('[', '{"a":'), fc.constantFrom('stop', textKey, 'moe', 'extra')).map(([depth, open, key]) => {
        const close = open === '[' ? ']' : '}';
        return { body: json(`{"model":${JSON.stringify(model)},"max_tokens":2,${JSON.stringify(key)}:${open.repeat(depth)}1${close.repeat(depth)}}`), kind: 'deep-nesting' };
      }),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(obj, fc.integer({ min: 1, max: 64 })).map(([o, cut]) => {
        const t = json(JSON.stringify(o));
        return { body: t.subarray(0, Math.max(0, t.length - cut)), kind: 'truncated-json' };
      }),
    },
    { weight: 1, arbitrary: fc.constant({ body: json(JSON.stringify({ model, [textKey]: 'x'.repeat(maxBodyBytes) })), kind: 'oversized' }) },
    { weight: 1, arbitrary: fc.constantFrom({ body: null, kind: 'no-body' }, { body: new Uint8Array(0), kind: 'empty-body' }) },
  );
}

const contentType = fc.constantFrom<string | null>('application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', null);
const authorization = fc.oneof(
  { weight: 6, arbitrary: fc.constant<string | null>(null) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((s) => `Bearer ${s}`) },
  { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Basic abc', 'bearer  ', 'Bearer \t x') },
);

export interface RequestSpace {
  model: string;
  maxBodyBytes: number;
  adminToken: string;
}

/** Any request: mostly POSTs to the completion routes, some to other routes and methods. */
export function fuzzRequest(s: RequestSpace): fc.Arbitrary<FuzzRequest> {
  const post = (route: 'chat' | 'completion') =>
    fc.tuple(body(s.model, route, s.maxBodyBytes), contentType, authorization).map(([b, ct, auth]): FuzzRequest => ({
      method: 'POST',
      path: route === 'chat' ? '/v1/chat/completions' : '/v1/completions',
      headers: { ...(ct === null ? {} : { 'content-type': ct }), ...(auth === null ? {} : { authorization: auth }) },
      body: b.body,
      kind: b.kind,
    }));
  const other = fc
    .tuple(
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
      fc.oneof(
        fc.constantFrom('/v1/models', `/v1/models/${s.model}`, '/v1/models/%00', '/healthz', '/metrics', '/admin/hot-set', '/admin', '/admin/stats', '/v1/chat/completions', '/v1/completions', '/', '/v1/embeddings'),
        fc.webPath(),
      ),
      fc.oneof(fc.constant(null), anyJson.map((v) => json(JSON.stringify(v) ?? 'null')), fc.uint8Array({ maxLength: 128 })),
      authorization,
    )
    .map(([method, path, b, auth]): FuzzRequest => ({
      method,
      path: path.startsWith('/') ? path : `/${path}`,
      headers: auth === null ? {} : ({ authorization: auth } as Record<string, string>),
      body: method === 'GET' || method === 'HEAD' ? null : b,
      kind: 'routes-methods',
    }));
  // PUT /admin/hot-set with the right token and a random hot set (wrong ones get 401 above)
  const hotSet = fc
    .oneof(
      fc.record({ layers: fc.dictionary(fc.oneof(fc.constantFrom('0', '1', '2', '-1', '01', '1e3'), weirdString), fc.oneof(fc.array(fc.integer({ min: -2, max: 9 }), { maxLength: 6 }), anything), { maxKeys: 3 }) }),
      fc.record({ preset: fc.oneof(fc.constantFrom('all', 'none', 'auto', '50%', '100%', '0%', '101%', '12.5%'), anything) }),
      anything,
    )
    .map((v): FuzzRequest => ({
      method: 'PUT',
      path: '/admin/hot-set',
      headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' },
      body: json(JSON.stringify(v) ?? 'null'),
      kind: 'admin-hot-set',
    }));
  return fc.oneof({ weight: 8, arbitrary: post('chat') }, { weight: 8, arbitrary: post('completion') }, { weight: 3, arbitrary: other }, { weight: 1, arbitrary: hotSet });
}

// The JSON Schema features constrained decoding enforces (what xgrammar's schema converter implements); any other
// keyword would be silently ignored by the grammar, so it is refused with a 400 naming where it is.
import { InvalidRequestError } from '../common/errors';

/** Keywords the grammar enforces, or that only annotate (title, description, examples, default). */
const SUPPORTED = new Set([
  'type', 'properties', 'required', 'additionalProperties', 'items', 'prefixItems', 'minItems', 'maxItems',
  'enum', 'const', 'anyOf', 'oneOf', '$ref', '$defs', 'definitions',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'format',
  'title', 'description', 'examples', 'default', '$schema', '$id', '$comment',
]);
/** String formats xgrammar has a grammar for. */
const FORMATS = new Set(['date-time', 'date', 'time', 'email', 'uuid', 'uri', 'ipv4', 'ipv6', 'hostname']);
const TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

/** Throws a 400 `invalid_value` naming `param` + the JSON path of the first unsupported or malformed part. */
export function checkSchema(schema: unknown, param: string): void {
  walk(schema, param);
}

function fail(path: string, why: string): never {
  throw new InvalidRequestError(`Invalid schema at '${path}': ${why}`, path, 'invalid_value');
}

function walk(s: unknown, path: string): void {
  if (typeof s === 'boolean') return;
  if (!s || typeof s !== 'object' || Array.isArray(s)) fail(path, 'a schema must be an object or a boolean');
  const o = s as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!SUPPORTED.has(key)) fail(`${path}.${key}`, `'${key}' is not supported by constrained decoding; supported: ${[...SUPPORTED].join(', ')}`);
  if (o.type !== undefined) {
    const types = Array.isArray(o.type) ? o.type : [o.type];
    for (const t of types) if (typeof t !== 'string' || !TYPES.has(t)) fail(`${path}.type`, `unknown type ${JSON.stringify(t)}`);
  }
  if (o.format !== undefined && !FORMATS.has(o.format as string)) fail(`${path}.format`, `format ${JSON.stringify(o.format)} is not supported; supported: ${[...FORMATS].join(', ')}`);
  if (o.enum !== undefined && (!Array.isArray(o.enum) || o.enum.length === 0)) fail(`${path}.enum`, 'enum must be a non-empty array');
  if (o.required !== undefined && (!Array.isArray(o.required) || o.required.some((r) => typeof r !== 'string'))) fail(`${path}.required`, 'required must be an array of property names');
  for (const k of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems']) {
    if (o[k] !== undefined && typeof o[k] !== 'number') fail(`${path}.${k}`, `${k} must be a number`);
  }
  if (typeof o.minimum === 'number' && typeof o.maximum === 'number' && o.minimum > o.maximum) fail(`${path}.minimum`, 'minimum is above maximum');
  if (o.pattern !== undefined) {
    try {
      new RegExp(o.pattern as string);
    } catch {
      fail(`${path}.pattern`, 'not a valid regular expression');
    }
  }
  for (const k of ['properties', '$defs', 'definitions']) {
    const m = o[k];
    if (m === undefined) continue;
    if (!m || typeof m !== 'object' || Array.isArray(m)) fail(`${path}.${k}`, `${k} must be an object of schemas`);
    for (const [name, sub] of Object.entries(m)) walk(sub, `${path}.${k}.${name}`);
  }
  for (const k of ['anyOf', 'oneOf', 'prefixItems']) {
    const list = o[k];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0) fail(`${path}.${k}`, `${k} must be a non-empty array of schemas`);
    list.forEach((sub, i) => walk(sub, `${path}.${k}[${i}]`));
  }
  for (const k of ['items', 'additionalProperties']) if (o[k] !== undefined) walk(o[k], `${path}.${k}`);
}

// What an operator writes to choose the hot set (HOT_EXPERTS in wrangler.toml, or the body of
// PUT /admin/hot-set), parsed with zod into one of a few shapes before anything looks at a model.
//   all | none | auto (fill HOT_BUDGET_MB) | <p>% (that share of every layer) | {"layers": {"0": [1, 5], ...}}
import { z } from 'zod';
import { MoeError } from '../errors';

export type HotSetSpec =
  | { readonly kind: 'all' }
  | { readonly kind: 'none' }
  | { readonly kind: 'auto' }
  | { readonly kind: 'share'; readonly percent: number }
  | { readonly kind: 'explicit'; readonly layers: ReadonlyMap<number, readonly number[]> };

/** A hot set that cannot be used: bad syntax, unknown layer/expert, duplicates, over budget. 400 at the admin API. */
export class HotSetError extends MoeError {
  constructor(message: string, param: string | null = null, code = 'invalid_hot_set') {
    super(message, { status: 400, code, type: 'invalid_request_error', param });
  }
}

const LayerKey = z.string().regex(/^(0|[1-9]\d{0,4})$/, 'layer keys are decimal integers');
const ExpertIds = z.array(z.number().int().nonnegative());
export const ExplicitHotSetSchema = z.object({ layers: z.record(LayerKey, ExpertIds) }).strict();

const Preset = z.union([
  z.enum(['all', 'none', 'auto']),
  z.string().regex(/^(100|[1-9]?\d)(\.\d+)?%$/, 'a share is written like 50%'),
]);

/** The JSON value of a hot set: a preset string or {"layers": {...}}. */
export const HotSetSpecSchema = z.union([Preset, ExplicitHotSetSchema]);

/** Parses HOT_EXPERTS (a preset, or JSON text of {"layers": ...}); unset means all. */
export function parseHotExperts(value: string | undefined): HotSetSpec {
  const text = (value ?? '').trim();
  if (text === '') return { kind: 'all' };
  if (text.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new HotSetError(`HOT_EXPERTS is not valid JSON: ${(e as Error).message}`);
    }
    return parseHotSetValue(json);
  }
  return parseHotSetValue(text);
}

/** Parses the JSON value of a hot set (the admin API's body, a stored hot-set.json's layers). */
export function parseHotSetValue(json: unknown): HotSetSpec {
  // one schema per JSON type, so an issue keeps its path (a union would report only "invalid input")
  const r = (typeof json === 'string' ? Preset : typeof json === 'object' && json !== null ? ExplicitHotSetSchema : HotSetSpecSchema).safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.map(String).join('.');
    throw new HotSetError(
      `invalid hot set${path ? ` at ${path}` : ''}: ${issue.message} (expected "all", "none", "auto", "<p>%" or {"layers": {"0": [1, 5], ...}})`,
      path || null,
    );
  }
  const v = r.data;
  if (typeof v === 'string') {
    if (v === 'all' || v === 'none' || v === 'auto') return { kind: v };
    return { kind: 'share', percent: Number(v.slice(0, -1)) };
  }
  const layers = new Map<number, number[]>();
  for (const [key, experts] of Object.entries(v.layers)) layers.set(Number(key), experts);
  return { kind: 'explicit', layers };
}

/** The body of PUT /admin/hot-set: {"layers": {...}} or {"preset": "all" | "none" | "auto" | "<p>%"}. */
export function parseHotSetBody(body: unknown): HotSetSpec {
  if (body !== null && typeof body === 'object' && 'preset' in body) {
    const { preset, ...rest } = body as { preset: unknown };
    if (Object.keys(rest).length > 0) throw new HotSetError('give either "preset" or "layers", not both', Object.keys(rest)[0]!);
    if (typeof preset !== 'string') throw new HotSetError('"preset" is a string: all, none, auto or <p>%', 'preset');
    try {
      return parseHotSetValue(preset);
    } catch (e) {
      throw new HotSetError((e as Error).message, 'preset');
    }
  }
  return parseHotSetValue(body);
}

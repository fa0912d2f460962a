// What an operator writes to choose the hot set (HOT_EXPERTS in wrangler.toml, or the body of
// PUT /admin/hot-set), parsed with zod into one of a few shapes before anything looks at a model.
//   all | none | auto (planned within HOT_BUDGET_MB) | <p>% (that share of every layer) | {"layers": {"0": [1, 5], ...}}
// PUT /admin/hot-set also takes a planned document (plan-hot-set's hot-set.json): layers, profiles, skill map.
import { z } from 'zod';
import { MoeError } from '../common/errors';
import { SkillMapSchema, type SkillMap } from '../routing/skill-map';
import { HOT_SET_FORMAT, PROFILE_NAME } from './store';

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

/** An explicit hot set: {"layers": {...}}. */
export type ExplicitHotSetSpec = Extract<HotSetSpec, { kind: 'explicit' }>;

/** What PUT /admin/hot-set asks for: the top-level set, and with a planned document its profiles and skill map. */
export interface HotSetBody {
  readonly spec: HotSetSpec;
  /** named hot sets (tier one); null: none */
  readonly profiles: ReadonlyMap<string, ExplicitHotSetSpec> | null;
  readonly skillMap: SkillMap | null;
  /** the model the document was planned for, when it says */
  readonly model: string | null;
  /** the planner's notes, kept as written */
  readonly plan: Record<string, unknown> | null;
}

/** Keys of a planned document (src/planning/hot-set-file.ts) besides "layers". */
const PlannedDocSchema = z
  .object({
    format: z.literal(HOT_SET_FORMAT).optional(),
    version: z.number().optional(),
    model: z.string().optional(),
    layers: z.unknown(),
    bytes: z.number().optional(),
    updatedAt: z.string().optional(),
    profiles: z.record(z.string(), z.unknown()).optional(),
    skillMap: z.unknown().optional(),
    plan: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

function isPlannedDoc(body: unknown): body is Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !('layers' in body)) return false;
  return Object.keys(body).some((k) => k !== 'layers');
}

/**
 * The body of PUT /admin/hot-set: a preset ({"preset": ...}), {"layers": ...}, or a planned document
 * ({"layers", "profiles", "skillMap", ...} as `plan-hot-set` writes it, or as POST /admin/hot-set/plan returns it).
 */
export function parseHotSetPut(body: unknown): HotSetBody {
  if (!isPlannedDoc(body) || 'preset' in body) return { spec: parseHotSetBody(body), profiles: null, skillMap: null, model: null, plan: null };
  const r = PlannedDocSchema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const path = issue.path.map(String).join('.') || (issue.code === 'unrecognized_keys' ? issue.keys[0] : '') || null;
    throw new HotSetError(`invalid hot-set document${path ? ` at ${path}` : ''}: ${issue.message}`, path);
  }
  const doc = r.data;
  const spec = parseHotSetValue({ layers: doc.layers });
  let profiles: Map<string, ExplicitHotSetSpec> | null = null;
  if (doc.profiles) {
    profiles = new Map();
    for (const [name, value] of Object.entries(doc.profiles)) {
      if (!PROFILE_NAME.test(name)) throw new HotSetError(`invalid profile name ${JSON.stringify(name)}: 1-64 letters, digits, _ . - (starting with a letter or digit)`, `profiles.${name}`);
      const layers = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as { layers?: unknown }).layers : undefined;
      try {
        const p = parseHotSetValue({ layers });
        if (p.kind !== 'explicit') throw new HotSetError('a profile lists its experts: {"layers": {...}}');
        profiles.set(name, p);
      } catch (e) {
        if (!(e instanceof HotSetError)) throw e;
        throw new HotSetError(`profile ${name}: ${e.message}`, `profiles.${name}.${e.param ?? 'layers'}`);
      }
    }
  }
  let skillMap: SkillMap | null = null;
  if (doc.skillMap !== undefined) {
    const m = SkillMapSchema.safeParse(doc.skillMap);
    if (!m.success) {
      const issue = m.error.issues[0]!;
      throw new HotSetError(`invalid skill map: ${issue.message}`, ['skillMap', ...issue.path.map(String)].join('.'));
    }
    skillMap = m.data;
    const unknown = Object.keys(skillMap.centroids).filter((n) => !profiles?.has(n));
    if (unknown.length) throw new HotSetError(`the skill map has a centroid for ${unknown.join(', ')}, which is not a profile of this document`, `skillMap.centroids.${unknown[0]}`);
  }
  return { spec, profiles, skillMap, model: doc.model ?? null, plan: doc.plan ?? null };
}

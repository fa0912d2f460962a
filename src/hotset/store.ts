// hot-set.json beside the model in R2: the active hot set, versioned (each write is version + 1, written
// only if nobody wrote in between), so every isolate converges on the same experts within seconds. Besides
// the top-level set it may carry named profiles (tier one: one hot set per kind of prompt), the skill map
// that picks among them, and what the planner expected (kept as written, for people and the dashboard).
import { z } from 'zod';
import { MoeError } from '../common/errors';
import { objectNames } from '../format/manifest';
import { SkillMapSchema } from '../routing/skill-map';

export const HOT_SET_FORMAT = 'moe-edge/hot-set/1';

/** layer (as a string key) -> its hot experts */
export const HotSetLayersSchema = z.record(z.string(), z.array(z.number().int().nonnegative()));
const Layers = HotSetLayersSchema;

/** Profile names: what `moe.profile` takes and /metrics labels carry. */
export const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const ProfileNameSchema = z.string().regex(PROFILE_NAME, 'profile names are 1-64 letters, digits, _ . - (starting with a letter or digit)');

/** One profile: its hot experts per layer; the planner adds its bytes and expected hit rate, kept as they are. */
export const HotSetProfileSchema = z.looseObject({ layers: Layers });

export const HotSetDocSchema = z.object({
  format: z.literal(HOT_SET_FORMAT),
  version: z.number().int().positive(),
  /** the manifest's model name, so a hot set is never applied to another model by mistake */
  model: z.string(),
  layers: Layers,
  /** heap bytes of every expert resident: the top-level set and the profiles, each expert once */
  bytes: z.number().int().nonnegative(),
  updatedAt: z.string(),
  profiles: z.record(ProfileNameSchema, HotSetProfileSchema).optional(),
  skillMap: SkillMapSchema.optional(),
  /** the planner's notes (budget, expected hit rates), when a planned document was stored */
  plan: z.record(z.string(), z.unknown()).optional(),
});
export type HotSetDoc = z.infer<typeof HotSetDocSchema>;

export interface StoredHotSet {
  doc: HotSetDoc;
  /** changes on every write: what isolates compare to notice a new version */
  etag: string;
}

export interface HotSetStore {
  /** The current etag, or null when no hot set is stored (cheap: no body). */
  etag(): Promise<string | null>;
  read(): Promise<StoredHotSet | null>;
  /** Writes `doc` as version (stored version + 1); HotSetConflictError if another write came first. */
  write(doc: Omit<HotSetDoc, 'version' | 'updatedAt' | 'format'>): Promise<StoredHotSet>;
}

export class HotSetConflictError extends MoeError {
  constructor() {
    super('the hot set was changed by another request meanwhile; read it and try again', { status: 409, code: 'hot_set_conflict', type: 'invalid_request_error' });
  }
}

/** A stored hot-set.json that does not parse: reported, then ignored in favour of HOT_EXPERTS. */
export class HotSetDocError extends Error {}

export function r2HotSetStore(bucket: R2Bucket, modelKeyPrefix: string): HotSetStore {
  const key = `${modelKeyPrefix.replace(/\/+$/, '')}/${objectNames.hotSet}`;
  const read = async (): Promise<StoredHotSet | null> => {
    const obj = await bucket.get(key);
    if (!obj) return null;
    let json: unknown;
    try {
      json = JSON.parse(await obj.text());
    } catch (e) {
      throw new HotSetDocError(`${key} is not JSON: ${(e as Error).message}`);
    }
    const r = HotSetDocSchema.safeParse(json);
    if (!r.success) throw new HotSetDocError(`${key}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    return { doc: r.data, etag: obj.etag };
  };
  return {
    async etag() {
      return (await bucket.head(key))?.etag ?? null;
    },
    read,
    async write(doc) {
      const head = await bucket.head(key);
      let version = 1;
      if (head) {
        const current = await read().catch(() => null);
        version = (current?.doc.version ?? 0) + 1;
      }
      const full: HotSetDoc = { format: HOT_SET_FORMAT, version, ...doc, updatedAt: new Date().toISOString() };
      const written = await bucket.put(key, JSON.stringify(full, null, 2), {
        httpMetadata: { contentType: 'application/json' },
        customMetadata: { version: String(version) },
        // only if nobody wrote since we looked (uploadedBefore-less create when absent)
        onlyIf: head ? { etagMatches: head.etag } : { etagDoesNotMatch: '*' },
      });
      if (!written) throw new HotSetConflictError();
      return { doc: full, etag: written.etag };
    },
  };
}

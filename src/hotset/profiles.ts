// Tier one of two-tier routing in an isolate: a hot set with named profiles. What is resident is the union
// of the top-level set and every profile (an expert shared by several is loaded once), and HOT_BUDGET_MB
// bounds that union. A generation is served by every resident expert (a resident expert never goes cold);
// its profile, named in `moe.profile` or picked by the skill map, labels its usage and routing statistics.
import type { Manifest } from '../format/manifest';
import type { SkillMap } from '../routing/skill-map';
import { resolveHotSet, type HotSet } from './resolve';
import { HotSetError, type ExplicitHotSetSpec, type HotSetSpec } from './spec';

export interface TierOne {
  /** the top-level set (what a hot set without profiles would be) */
  readonly base: HotSet;
  readonly profiles: ReadonlyMap<string, HotSet>;
  /** nearest-centroid picker over the prompt's layer-0 routing; null: profiles are picked explicitly only */
  readonly skillMap: SkillMap | null;
}

/** A resolved hot set: the union that is resident, and its profiles when it has any. */
export interface ProfiledHotSet extends HotSet {
  readonly tier: TierOne | null;
}

export interface ProfileSpecs {
  readonly spec: HotSetSpec;
  readonly profiles: ReadonlyMap<string, ExplicitHotSetSpec> | null;
  readonly skillMap: SkillMap | null;
}

/** Resolves the top-level set and the profiles against the manifest, and their union against the budget. */
export function resolveProfiled(s: ProfileSpecs, manifest: Manifest, budgetBytes: number | null): ProfiledHotSet {
  if (!s.profiles || s.profiles.size === 0) return { ...resolveHotSet(s.spec, manifest, budgetBytes), tier: null };
  const base = resolveHotSet(s.spec, manifest, null);
  const profiles = new Map<string, HotSet>();
  for (const [name, spec] of s.profiles) {
    try {
      profiles.set(name, resolveHotSet(spec, manifest, null));
    } catch (e) {
      if (!(e instanceof HotSetError)) throw e;
      throw new HotSetError(`profile ${name}: ${e.message}`, `profiles.${name}.${e.param ?? 'layers'}`);
    }
  }
  if (s.skillMap) checkSkillMap(s.skillMap, manifest, profiles);
  const union = new Map<number, number[]>();
  for (const h of [base, ...profiles.values()]) h.layers.forEach((row, l) => union.set(l, [...new Set([...(union.get(l) ?? []), ...row])]));
  let resident: HotSet;
  try {
    resident = resolveHotSet({ kind: 'explicit', layers: union }, manifest, budgetBytes);
  } catch (e) {
    if (e instanceof HotSetError && e.code === 'hot_set_over_budget') {
      throw new HotSetError(`the hot set and its ${profiles.size} profiles are all resident: ${e.message}`, 'profiles', e.code);
    }
    throw e;
  }
  return { ...resident, tier: Object.freeze({ base, profiles, skillMap: s.skillMap }) };
}

/** The tier-one part of a resolved hot set, or null for a plain one. */
export function tierOf(h: HotSet): TierOne | null {
  return (h as Partial<ProfiledHotSet>).tier ?? null;
}

/** Centroids name profiles and have the model's shape (L x E), or the picker would compare the wrong things. */
function checkSkillMap(map: SkillMap, manifest: Manifest, profiles: ReadonlyMap<string, HotSet>): void {
  const { numLayers: L, numExperts: E } = manifest.architecture;
  const shaped = (m: readonly (readonly number[])[]) => m.length === L && m.every((row) => row.length === E);
  if (!shaped(map.center)) throw new HotSetError(`the skill map's center is not ${L} layers x ${E} experts`, 'skillMap.center');
  for (const [name, c] of Object.entries(map.centroids)) {
    if (!profiles.has(name)) throw new HotSetError(`the skill map has a centroid for ${name}, which is not a profile`, `skillMap.centroids.${name}`);
    if (!shaped(c)) throw new HotSetError(`the skill map's centroid ${name} is not ${L} layers x ${E} experts`, `skillMap.centroids.${name}`);
  }
}

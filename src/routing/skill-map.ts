// The skill map (tier one of two-tier routing): picks a profile for a prompt by nearest centroid over the
// prompt's own routing, i.e. the per-layer expert histogram of its prefill, which the engine computes anyway.
// Cheap in the Worker: L x E numbers per prompt, one cosine per profile.
import { z } from 'zod';

const Matrix = z.array(z.array(z.number()));

export const SkillMapSchema = z.object({
  /** prompt feature: each layer's routings of the prefill as shares per expert (rows sum to 1) */
  feature: z.literal('prefill-expert-histogram'),
  /** cosine similarity after subtracting `center` (the mean of the centroids), largest wins */
  similarity: z.literal('cosine-centered'),
  center: Matrix,
  /** the layers the feature uses (absent: all). Layer 0's routing comes before any expert runs, so it is
   *  the same whatever the hot set and cold policy: a Worker can pick the profile before the prefill's experts */
  layers: z.array(z.number().int().nonnegative()).optional(),
  /** profile (domain) -> its centroid, L x E, in the feature's units */
  centroids: z.record(z.string(), Matrix),
});
export type SkillMap = z.infer<typeof SkillMapSchema>;

/** The part of a domain's routing counts (src/routing/stats.ts) a skill map is built from. */
interface DomainCounts {
  readonly tokens: number;
  readonly counts: readonly (readonly number[])[];
}

/** Each layer's counts as shares (rows sum to 1; an empty row stays 0). */
export function histogram(counts: readonly (readonly number[])[]): number[][] {
  return counts.map((row) => {
    const s = row.reduce((a, b) => a + b, 0);
    return row.map((v) => (s ? v / s : 0));
  });
}

/**
 * Centroids from the per-domain counts of a calibration set: each domain's histogram of all its routings
 * (token-weighted, so it is the same whether built once or from merged runs).
 */
export function buildSkillMap(domains: Readonly<Record<string, DomainCounts>>): SkillMap | undefined {
  const names = Object.keys(domains).filter((d) => domains[d].tokens > 0).sort();
  if (names.length < 2) return undefined;
  const centroids = Object.fromEntries(names.map((d) => [d, histogram(domains[d].counts)]));
  const first = centroids[names[0]];
  const center = first.map((row, l) => row.map((_, e) => names.reduce((s, d) => s + centroids[d][l][e], 0) / names.length));
  return { feature: 'prefill-expert-histogram', similarity: 'cosine-centered', center, centroids };
}

/** The same map reading only some layers' routing. */
export function restrictSkillMap(map: SkillMap, layers: readonly number[]): SkillMap {
  return { ...map, layers: [...layers].sort((a, b) => a - b) };
}

export interface SkillChoice {
  /** the nearest profile */
  profile: string;
  /** profile -> cosine similarity (centered), in [-1, 1] */
  scores: Record<string, number>;
}

/** The profile whose centroid is nearest to a prompt's prefill counts (L x E, routings per expert). */
export function classify(map: SkillMap, prefillCounts: readonly (readonly number[])[]): SkillChoice {
  const use = map.layers ? new Set(map.layers) : null;
  const f = flatCentered(histogram(prefillCounts), map.center, use);
  const scores: Record<string, number> = {};
  let best = '';
  let bestScore = -Infinity;
  for (const [d, c] of Object.entries(map.centroids)) {
    const s = cosine(f, flatCentered(c, map.center, use));
    scores[d] = s;
    if (s > bestScore) {
      bestScore = s;
      best = d;
    }
  }
  return { profile: best, scores };
}

function flatCentered(m: readonly (readonly number[])[], center: readonly (readonly number[])[], layers: ReadonlySet<number> | null): number[] {
  const out: number[] = [];
  m.forEach((row, l) => {
    if (!layers || layers.has(l)) row.forEach((v, e) => out.push(v - (center[l]?.[e] ?? 0)));
  });
  return out;
}

function cosine(a: readonly number[], b: readonly number[]): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa && bb ? ab / Math.sqrt(aa * bb) : 0;
}

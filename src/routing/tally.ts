// The Worker's routing statistics: every generation's routing counts summed per isolate, overall and per
// profile, in the profiler's schema (GET /admin/stats feeds `plan-hot-set --stats` and the dashboard) and
// as Prometheus series (/metrics). Per isolate and in memory: an isolate that goes away takes its counts.
import type { SkillMap } from './skill-map';
import { emptyCounts, ROUTING_STATS_FORMAT, type RoutingCounts, type RoutingStats } from './stats';

export interface TallyModel {
  /** the manifest's model name */
  name: string;
  numLayers: number;
  numExperts: number;
  topK: number;
}

export class RoutingTally {
  private model: TallyModel | null = null;
  private overall: RoutingCounts | null = null;
  private readonly profiles = new Map<string, RoutingCounts>();
  /** when counting started (ISO time): the window the counts cover */
  since = new Date().toISOString();

  /** Adds one generation's counts, under its profile (null: the hot set has no profiles, or none applied). */
  add(model: TallyModel, profile: string | null, c: RoutingCounts): void {
    const m = this.model;
    if (!m || m.name !== model.name || m.numLayers !== model.numLayers || m.numExperts !== model.numExperts || m.topK !== model.topK) {
      this.reset(model); // another model under this id: its counts would not mean anything for this one
    }
    if (c.counts.length !== model.numLayers || c.counts.some((row) => row.length !== model.numExperts)) return;
    this.overall = addInto(this.overall!, c);
    if (profile !== null) this.profiles.set(profile, addInto(this.profiles.get(profile) ?? emptyCounts(model.numLayers, model.numExperts), c));
  }

  reset(model: TallyModel | null = this.model): void {
    this.model = model;
    this.overall = model ? emptyCounts(model.numLayers, model.numExperts) : null;
    this.profiles.clear();
    this.since = new Date().toISOString();
  }

  /** The counts as a routing-statistics document (null before the first generation). */
  stats(skillMap?: SkillMap | null): RoutingStats | null {
    const m = this.model;
    if (!m || !this.overall) return null;
    const copy = (c: RoutingCounts): RoutingCounts => ({ tokens: c.tokens, prompts: c.prompts, counts: c.counts.map((r) => [...r]) });
    const domains = Object.fromEntries([...this.profiles].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, c]) => [p, copy(c)]));
    return {
      format: ROUTING_STATS_FORMAT,
      model: m.name,
      numLayers: m.numLayers,
      numExperts: m.numExperts,
      topK: m.topK,
      overall: copy(this.overall),
      domains,
      ...(skillMap ? { skillMap } : {}),
    };
  }

  /** (profile or null, counts) for every profile seen, and the requests without one (overall minus the profiles). */
  byProfile(): [string | null, RoutingCounts][] {
    if (!this.overall) return [];
    const rest: RoutingCounts = { tokens: this.overall.tokens, prompts: this.overall.prompts, counts: this.overall.counts.map((r) => [...r]) };
    for (const c of this.profiles.values()) {
      rest.tokens -= c.tokens;
      rest.prompts -= c.prompts;
      c.counts.forEach((row, l) => row.forEach((v, e) => (rest.counts[l][e] -= v)));
    }
    const out: [string | null, RoutingCounts][] = [...this.profiles];
    if (rest.prompts > 0 || rest.tokens > 0) out.push([null, rest]);
    return out;
  }

  get modelName(): string | null {
    return this.model?.name ?? null;
  }
}

/** a += c in place (a is owned by the tally). */
function addInto(a: RoutingCounts, c: RoutingCounts): RoutingCounts {
  a.tokens += c.tokens;
  a.prompts += c.prompts;
  c.counts.forEach((row, l) => row.forEach((v, e) => (a.counts[l][e] += v)));
  return a;
}

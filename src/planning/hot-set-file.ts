// The planner's output, hot-set.json: the document the Worker keeps beside the model in R2 (format, version,
// model, layers, bytes, updatedAt: src/hotset/store.ts), plus the named profiles and the skill map that
// picks among them, plus what the planner expected. Extra keys are ignored by readers that predate profiles.
import { z } from 'zod';
import { HOT_SET_FORMAT, HotSetDocSchema, HotSetLayersSchema } from '../hotset/store';
import type { HotSetPlan } from './planner';
import type { SkillMap } from '../routing/skill-map';

const Layers = HotSetLayersSchema;
const Expected = z.object({ overall: z.number(), perLayer: z.array(z.number()) });

export const PlannedProfileSchema = z.object({
  layers: Layers,
  /** heap bytes of this profile's hot experts */
  bytes: z.number().int().nonnegative(),
  expected: Expected,
});

/** The stored document (src/hotset/store.ts) with the planner's profiles and notes made strict. */
export const PlannedHotSetSchema = HotSetDocSchema.extend({
  profiles: z.record(z.string(), PlannedProfileSchema).optional(),
  plan: z.object({
    /** which statistics the top-level layers were planned from: "overall" or a domain */
    from: z.string(),
    budgetBytes: z.number().int().nonnegative(),
    fixedBytes: z.number().int().nonnegative(),
    expected: Expected,
    /** hot experts kept at q4_0 (mixed precision; not yet applied by the Worker) */
    q4: Layers.optional(),
    exact: z.boolean(),
    /** bytes of every expert hot in the top-level set or any profile: what an isolate holding them all needs */
    unionBytes: z.number().int().nonnegative().optional(),
  }),
});
export type PlannedHotSet = z.infer<typeof PlannedHotSetSchema>;

export function layersJson(layers: readonly (readonly number[])[]): Record<string, number[]> {
  return Object.fromEntries(layers.map((row, l) => [String(l), [...row]]));
}

export function hotSetDocument(args: {
  model: string;
  version?: number;
  from: string;
  plan: HotSetPlan;
  profiles?: Record<string, HotSetPlan>;
  skillMap?: SkillMap;
  /** bytes of the union of the top-level set and the profiles (see plan.unionBytes) */
  unionBytes?: number;
  now?: Date;
}): PlannedHotSet {
  const { plan } = args;
  const mixed = plan.q4.some((r) => r.length > 0);
  return {
    format: HOT_SET_FORMAT,
    version: args.version ?? 1,
    model: args.model,
    layers: layersJson(plan.layers),
    bytes: plan.expertBytes,
    updatedAt: (args.now ?? new Date()).toISOString(),
    ...(args.profiles
      ? { profiles: Object.fromEntries(Object.entries(args.profiles).map(([d, p]) => [d, { layers: layersJson(p.layers), bytes: p.expertBytes, expected: p.expected }])) }
      : {}),
    ...(args.skillMap ? { skillMap: args.skillMap } : {}),
    plan: {
      from: args.from,
      budgetBytes: plan.budgetBytes,
      fixedBytes: plan.fixedBytes,
      expected: plan.expected,
      ...(mixed ? { q4: layersJson(plan.q4) } : {}),
      exact: plan.exact,
      ...(args.unionBytes !== undefined ? { unionBytes: args.unionBytes } : {}),
    },
  };
}

// HOT_EXPERTS=auto: the planner's hot set, planned in the Worker when the model loads, from routing
// statistics stored beside the model (routing-stats.json, written by `npm run cli -- profile`) within
// HOT_BUDGET_MB; with two or more domains in them, one profile per domain and the skill map, their union
// within the budget. Without statistics (or without a budget) `auto` falls back to resolve.ts's fill.
import { ObjectNotFoundError } from '../common/errors';
import type { Manifest } from '../format/manifest';
import type { ObjectSource } from '../store/source';
import { parseRoutingStats } from '../routing/stats';
import { planUnion } from './union-plan';
import { resolveProfiled, type ProfiledHotSet } from '../hotset/profiles';
import { parseHotSetPut } from '../hotset/spec';

/** The statistics object beside the model (not listed in the manifest: it changes without the weights). */
export const ROUTING_STATS_OBJECT = 'routing-stats.json';

/** The planned hot set, or null when there are no usable statistics (the reason goes to `log`). */
export async function planAutoHotSet(source: ObjectSource, manifest: Manifest, budgetBytes: number | null, log: (line: string) => void): Promise<ProfiledHotSet | null> {
  if (budgetBytes === null) return null; // no budget: every expert fits, nothing to choose
  let bytes: Uint8Array;
  try {
    bytes = await source.get(ROUTING_STATS_OBJECT);
  } catch (e) {
    if (!(e instanceof ObjectNotFoundError)) log(`HOT_EXPERTS=auto: ${ROUTING_STATS_OBJECT} unreadable (${(e as Error).message}); filling the budget without statistics`);
    return null;
  }
  try {
    const stats = parseRoutingStats(JSON.parse(new TextDecoder().decode(bytes)));
    const a = manifest.architecture;
    if (stats.model !== manifest.name || stats.numLayers !== a.numLayers || stats.numExperts !== a.numExperts) {
      throw new Error(`statistics of ${stats.model} (${stats.numLayers} x ${stats.numExperts}), not of ${manifest.name} (${a.numLayers} x ${a.numExperts})`);
    }
    const plan = planUnion(stats, manifest, { hotBudgetBytes: budgetBytes, profiles: true });
    return resolveProfiled(parseHotSetPut(plan.doc), manifest, budgetBytes);
  } catch (e) {
    log(`HOT_EXPERTS=auto: ${ROUTING_STATS_OBJECT} ignored (${(e as Error).message}); filling the budget without statistics`);
    return null;
  }
}

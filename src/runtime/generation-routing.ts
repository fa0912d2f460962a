// One generation's routing, watched from outside the cold policy: a RoutingRecorder around the split
// executor counts what the routers asked for, a ProfilePicker (when the hot set has a skill map and the
// request named no profile) picks the profile from the prompt's layer-0 routing, and when the generation
// ends its counts go to the isolate's tally under that profile.
import type { MoeUsage } from '../engine/api';
import type { ExpertExecutor } from '../engine/experts';
import type { Architecture } from '../format/manifest';
import type { TierOne } from '../hotset/profiles';
import { ProfilePicker } from '../routing/pick-profile';
import { RoutingRecorder } from '../routing/record';
import type { RoutingTally } from '../routing/tally';

export interface WatchOptions {
  model: string;
  arch: Architecture;
  /** the hot set's profiles; null: none, so no profile applies */
  tier: TierOne | null;
  /** `moe.profile`, already checked against the tier */
  requested?: string;
  promptTokens: number;
  /** usage.moe of the generation: gets `profile` */
  usage: MoeUsage;
  tally: RoutingTally | null;
}

export function watchRouting(experts: ExpertExecutor, o: WatchOptions): { experts: ExpertExecutor; end(): void } {
  const { numLayers: L, numExperts: E, topK } = o.arch;
  let inner = experts;
  if (o.tier && o.requested !== undefined) {
    o.usage.profile = o.requested;
  } else if (o.tier?.skillMap) {
    inner = new ProfilePicker(experts, o.tier.skillMap, L, E, o.promptTokens, (p) => (o.usage.profile = p));
  }
  if (!o.tally) return { experts: inner, end() {} };
  const recorder = new RoutingRecorder(inner, L, E);
  let ended = false;
  return {
    experts: recorder,
    end() {
      if (ended) return;
      ended = true;
      const counts = recorder.take();
      if (counts.tokens > 0) o.tally!.add({ name: o.model, numLayers: L, numExperts: E, topK }, o.usage.profile ?? null, { ...counts, prompts: 1 });
    },
  };
}

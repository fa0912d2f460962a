// The local cold policies as a plan over one layer's batch (pure: no heap, no I/O, unit-tested alone).
//   substitute: each cold pick is replaced by the best-scoring resident expert of that token that the router
//               did not choose and no earlier slot took; it keeps the cold expert's routing weight.
//   drop:       cold picks are left out and the token's remaining weights are renormalised to their old sum
//               (W / W_kept; W = 1 under norm_topk_prob). A token whose picks are all cold gets its best
//               resident expert with the whole weight W instead.
// Substitute falls back to drop for a slot when no unused resident expert is left; a layer with no resident
// expert at all contributes nothing for such tokens (the residual stream passes through).
import type { ExpertJob, ExpertRoute } from '../engine/experts';
import { groupPairs } from '../protocol/expert-call';

export interface ColdPick {
  readonly token: number;
  readonly slot: number;
  readonly expert: number;
}

export interface FallbackPlan {
  /** Local work: substitutes into cold slots, or a token's best resident expert when all its picks are cold. */
  jobs: ExpertJob[];
  /** Slots whose output must be zero (dropped). */
  zero: { token: number; slot: number }[];
  /** Slots whose (already computed or planned) output is multiplied by `factor` (renormalisation). */
  scale: { token: number; slot: number; factor: number }[];
}

export interface FallbackInput {
  policy: 'substitute' | 'drop';
  routes: readonly (readonly ExpertRoute[])[];
  cold: readonly ColdPick[];
  /** Resident experts of the layer, ascending. */
  resident: readonly number[];
  /** Router scores of token t (probabilities or logits: only their order is used), length = experts. */
  scores(token: number): ArrayLike<number>;
}

export function planFallback(input: FallbackInput): FallbackPlan {
  const plan: FallbackPlan = { jobs: [], zero: [], scale: [] };
  for (const { key: t, members } of groupPairs(input.cold.length, (i) => input.cold[i].token)) {
    const picks = members.map((i) => input.cold[i]);
    const slots = input.routes[t];
    const dropped = new Set<number>();
    if (input.policy === 'substitute') {
      const taken = new Set(slots.map((r) => r.expert));
      const order = ranked(input.resident, input.scores(t)).filter((e) => !taken.has(e));
      for (const c of [...picks].sort((a, b) => a.slot - b.slot)) {
        const e = order.shift();
        if (e === undefined) dropped.add(c.slot);
        else plan.jobs.push({ token: t, slot: c.slot, expert: e });
      }
    } else {
      for (const c of picks) dropped.add(c.slot);
    }
    if (dropped.size === 0) continue;
    for (const s of dropped) plan.zero.push({ token: t, slot: s });
    const total = slots.reduce((sum, r) => sum + r.weight, 0);
    const kept = slots.map((_, s) => s).filter((s) => !dropped.has(s));
    const keptWeight = kept.reduce((sum, s) => sum + slots[s].weight, 0);
    if (kept.length > 0 && keptWeight > 0) {
      for (const s of kept) plan.scale.push({ token: t, slot: s, factor: total / keptWeight });
      continue;
    }
    // every pick cold: the best resident expert, in the slot with the largest weight, carries all of it
    const best = ranked(input.resident, input.scores(t))[0];
    let slot = 0;
    for (let s = 1; s < slots.length; s++) if (slots[s].weight > slots[slot].weight) slot = s;
    if (best === undefined || !(slots[slot].weight > 0)) continue;
    plan.zero.splice(plan.zero.findIndex((z) => z.token === t && z.slot === slot), 1);
    plan.jobs.push({ token: t, slot, expert: best });
    plan.scale.push({ token: t, slot, factor: total / slots[slot].weight });
  }
  return plan;
}

/** Resident experts by descending score (ties: lower id first, as the router's top-k breaks them). */
function ranked(resident: readonly number[], scores: ArrayLike<number>): number[] {
  return [...resident].sort((a, b) => scores[b] - scores[a] || a - b);
}

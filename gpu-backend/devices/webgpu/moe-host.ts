// The host's share of the webgpu MoE block, in forward.ts's arithmetic: routing weights from the GPU's top-k,
// the (token, slot) jobs grouped by expert, and the weighted sum of expert outputs plus the residual add, each
// rounding as the Kernels' addScaled does (A = f32(A + f32(f32(s) * B))). These are O(tokens * topK * hidden)
// element-wise steps, cheaper on the host than another submit and readback.
import type { Architecture } from '../../../src/format/manifest';
import type { ExpertRoute } from '../../../src/engine/experts';
import { groupPairs } from '../../../src/protocol/expert-call';
import { routeWeights } from '../../../src/engine/forward';
import { addScaledF32 } from '../../../src/common/add-scaled-f32';

/** routes[t][slot] from the GPU's top-k of each token: idx, val (nTok, K). */
export function routesOf(idx: Int32Array, val: Float32Array, nTok: number, a: Architecture): ExpertRoute[][] {
  const K = a.topK;
  return Array.from({ length: nTok }, (_, t) => {
    const w = routeWeights(val.subarray(t * K, (t + 1) * K), a);
    return Array.from(idx.subarray(t * K, (t + 1) * K), (expert, s) => ({ expert, weight: w[s] }));
  });
}

/** One expert's share of a chunk: the (token, slot) pairs it serves, and their rows of h gathered. */
export interface ExpertWork { expert: number; pairs: { token: number; slot: number }[]; x: Float32Array }

export function groupByExpert(routes: readonly (readonly ExpertRoute[])[], h: Float32Array, H: number): ExpertWork[] {
  const pairs = routes.flatMap((slots, token) => slots.map((r, slot) => ({ token, slot, expert: r.expert })));
  return groupPairs(pairs.length, (i) => pairs[i].expert).map(({ key, members }) => {
    const x = new Float32Array(members.length * H);
    members.forEach((m, i) => x.set(h.subarray(pairs[m].token * H, (pairs[m].token + 1) * H), i * H));
    return { expert: key, pairs: members.map((m) => ({ token: pairs[m].token, slot: pairs[m].slot })), x };
  });
}

/**
 * The residual stream after the MoE block: x + residualMultiplier * (sum over slots, in slot order, of weight *
 * expert output, then the shared expert, gated per token by sigmoid(gate) when the model has a gate).
 */
export function combineMoe(
  x: Float32Array, routes: readonly (readonly ExpertRoute[])[], work: readonly ExpertWork[], outputs: readonly Float32Array[],
  shared: { y: Float32Array; gate: Float64Array | null } | null, a: Architecture,
): Float32Array {
  const H = a.hiddenSize;
  const T = routes.length;
  const K = a.topK;
  const bySlot: (Float32Array | undefined)[] = new Array(T * K);
  work.forEach((w, j) => w.pairs.forEach((p, i) => { bySlot[p.token * K + p.slot] = outputs[j].subarray(i * H, (i + 1) * H); }));
  const moe = new Float32Array(T * H);
  for (let t = 0; t < T; t++) {
    const row = moe.subarray(t * H, (t + 1) * H);
    for (let s = 0; s < K; s++) addScaledF32(row, bySlot[t * K + s]!, routes[t][s].weight);
    if (shared) addScaledF32(row, shared.y.subarray(t * H, (t + 1) * H), shared.gate ? 1 / (1 + Math.exp(-shared.gate[t])) : 1);
  }
  const out = x.slice();
  addScaledF32(out, moe, a.residualMultiplier);
  return out;
}

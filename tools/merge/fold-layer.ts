// One layer of `merge-experts --method merge`: each removed expert goes into the kept expert whose outputs on
// the tokens it served are most alike (mean cosine), the group's weights are neuron-aligned and averaged by
// routing frequency, the down projection is refitted to the group's old answers, and the router row is refitted
// so the group's probability mass goes to the merged expert.
import type { LocalModel } from '../../src/engine/load';
import { expertEntries, type Manifest } from '../../src/format/manifest';
import { decodeTensor, encodeTensor } from '../../src/format/quant';
import { mergeInto, type ExpertFloats, type Weighted } from '../../src/merge/combine';
import { fitDown, hiddenActivations } from '../../src/merge/down-fit';
import { fitMergedRouter, pruneRouter } from '../../src/merge/router-fit';
import type { ObjectSource } from '../../src/store/source';
import { expertOutputs, meanCosine, type LayerSample } from './calibrate';
import { readExpertFloats } from './write';

export interface FoldRecord {
  layer: number;
  expert: number;
  into: number;
  similarity: number;
  routings: number;
}

export interface FoldedLayer {
  router: Float32Array;
  /** new expert id -> its weights */
  rewritten: Map<number, ExpertFloats>;
  records: FoldRecord[];
}

/** At most `cap` of `idx`, evenly spread. */
function spreadIdx(idx: number[], cap: number): number[] {
  if (idx.length <= cap) return idx;
  return Array.from({ length: cap }, (_, i) => idx[Math.floor(((i + 0.5) * idx.length) / cap)]);
}

/** x as it reads back after the model's expert dtype (the activations the refit sees are the stored gate/up's). */
function stored(manifest: Manifest, layer: number, x: Float32Array): Float32Array {
  const dtype = expertEntries(manifest, layer, 0).gate.dtype;
  return decodeTensor(dtype, encodeTensor(dtype, x), x.length);
}

export interface FoldInput {
  model: LocalModel;
  source: ObjectSource;
  layer: number;
  kept: readonly number[];
  removed: readonly number[];
  /** routing counts of this layer (the statistics): the merge's frequency weights */
  counts: readonly number[];
  sample: LayerSample;
  routerRows: Float32Array;
  log: (line: string) => void;
  /** tokens per refit (evenly spread over those the group served) */
  fitTokens?: number;
  /** refit down to the group's old outputs (default) or keep the average (measured worse: bench/results/merge.md) */
  downRefit?: boolean;
  /** refit the router row to the group's LSE (default) or keep the kept expert's row */
  routerFit?: boolean;
}

export async function foldLayer(f: FoldInput): Promise<FoldedLayer> {
  const { model, layer: l, sample } = f;
  const manifest = model.manifest;
  const { hiddenSize: H, expertFfnSize: I } = manifest.architecture;
  const { X, picks, weights } = sample;
  const into = new Map<number, number[]>(f.kept.map((k) => [k, []]));
  const records: FoldRecord[] = [];
  for (const r of f.removed) {
    // the tokens this expert served (all sampled tokens when too few picked it): which kept expert answers them alike
    let idx = picks.flatMap((p, t) => (p.includes(r) ? [t] : []));
    if (idx.length < 16) idx = picks.map((_, t) => t);
    idx = spreadIdx(idx, 2048);
    const mine = expertOutputs(model, l, r, X, idx);
    let best = f.kept[0];
    let bestSim = -Infinity;
    for (const k of f.kept) {
      const sim = meanCosine(mine, expertOutputs(model, l, k, X, idx), H);
      if (sim > bestSim) [best, bestSim] = [k, sim];
    }
    into.get(best)!.push(r);
    records.push({ layer: l, expert: r, into: best, similarity: bestSim, routings: f.counts[r] });
    f.log(`layer ${l}: expert ${r} (${f.counts[r]} routings) -> ${best} (output cosine ${bestSim.toFixed(3)} on ${idx.length} tokens)`);
  }
  const rewritten = new Map<number, ExpertFloats>();
  for (const [i, k] of f.kept.entries()) {
    const members = into.get(k)!;
    if (members.length === 0) continue;
    const group = [k, ...members];
    const read = (e: number): Promise<Weighted> => readExpertFloats(f.source, manifest, l, e).then((w) => ({ w, weight: f.counts[e] }));
    const avg = mergeInto(await read(k), await Promise.all(members.map(read)), I, H);
    const merged: ExpertFloats = { gate: stored(manifest, l, avg.gate), up: stored(manifest, l, avg.up), down: avg.down };
    // targets: on each token the group served, its members' outputs mixed by their routing weights
    const idx = spreadIdx(picks.flatMap((p, t) => (p.some((e) => group.includes(e)) ? [t] : [])), f.fitTokens ?? 4096);
    if (idx.length > 0 && f.downRefit !== false) {
      const Y = new Float32Array(idx.length * H);
      for (const e of group) {
        const out = expertOutputs(model, l, e, X, idx);
        idx.forEach((t, r) => {
          const slot = picks[t].indexOf(e);
          if (slot < 0) return;
          const total = picks[t].reduce((s, x, j) => s + (group.includes(x) ? weights[t][j] : 0), 0) || 1;
          const share = weights[t][slot] / total;
          for (let h = 0; h < H; h++) Y[r * H + h] += share * out[r * H + h];
        });
      }
      merged.down = fitDown(hiddenActivations(merged, X, idx, I, H), Y, avg.down, I, H);
    }
    rewritten.set(i, merged);
  }
  const router = f.routerFit === false ? pruneRouter(f.routerRows, H, f.kept) : fitMergedRouter(f.routerRows, H, f.kept, into, X);
  return { router, rewritten, records };
}

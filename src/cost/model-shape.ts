// What the cost model needs to know about a model, from its manifest alone: layers, experts, top-k, the bytes one
// decode step reads (trunk vs routed experts, heap layout: the unit the edge computes over), the stored bytes in R2
// and the active parameters (for a GPU's compute-bound prefill).
import { objectNames, tensorNames, type Manifest } from '../format/manifest';
import { memoryBytes } from '../format/quant';
import { edgeSizes, totalExpertBytes } from '../planning/sizes';

export interface ModelShape {
  name: string;
  layers: number;
  experts: number;
  topK: number;
  /** mean heap bytes of one routed expert (gate + up + down) */
  expertBytes: number;
  /** every routed expert's heap bytes together */
  allExpertBytes: number;
  /** trunk + shared experts in the heap (what every edge isolate holds) */
  fixedBytes: number;
  /** trunk bytes one decode step reads: every trunk tensor but the input embedding (one row of it), the head once */
  trunkStepBytes: number;
  /** routed-expert bytes one decode step reads: top-k experts per layer */
  expertStepBytes: number;
  /** bytes stored in R2 (every object of the manifest) and how many objects */
  storedBytes: number;
  objects: number;
  /** parameters one token passes through (trunk incl. the head, top-k experts per layer) */
  activeParams: number;
  /** parameters of one routed expert (gate + up + down) */
  expertParams: number;
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function modelShape(m: Manifest): ModelShape {
  const a = m.architecture;
  const sizes = edgeSizes(m);
  const all = totalExpertBytes(sizes);
  const expertBytes = all / (a.numLayers * a.numExperts);
  const embed = m.tensors[tensorNames.tokenEmbedding];
  // an untied input embedding is read one row per token (left out); a tied one is read whole as the head
  const trunkStepBytes = sizes.fixedBytes - (embed && !a.tieWordEmbeddings ? memoryBytes(embed.dtype, numel(embed.shape)) : 0);
  let trunkParams = 0;
  for (const [name, t] of Object.entries(m.tensors)) {
    if (t.object !== objectNames.trunk) continue;
    if (name === tensorNames.tokenEmbedding && !a.tieWordEmbeddings) continue;
    trunkParams += numel(t.shape);
  }
  const e0 = [tensorNames.expertGate(0, 0), tensorNames.expertUp(0, 0), tensorNames.expertDown(0, 0)].reduce((s, n) => s + numel(m.tensors[n]?.shape ?? [0]), 0);
  const objects = Object.values(m.objects);
  return {
    name: m.name,
    layers: a.numLayers,
    experts: a.numExperts,
    topK: a.topK,
    expertBytes,
    allExpertBytes: all,
    fixedBytes: sizes.fixedBytes,
    trunkStepBytes,
    expertStepBytes: a.numLayers * a.topK * expertBytes,
    storedBytes: objects.reduce((s, o) => s + o.bytes, 0),
    objects: objects.length,
    activeParams: trunkParams + a.numLayers * a.topK * e0,
    expertParams: e0,
  };
}

/** Share of one decode step's bytes that are routed experts: the share of edge decode time they take (decode is
 *  memory-bound: bench/results/shapes.md reads it as a fraction of the streaming bound). */
export function expertShare(s: ModelShape): number {
  return s.expertStepBytes / (s.expertStepBytes + s.trunkStepBytes);
}

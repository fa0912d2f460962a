// What the edge must hold, in bytes, read from the manifest's tensor index: each routed expert (at its
// stored dtype, or re-quantized to q4_0 for mixed precision) and the fixed part (trunk: embeddings,
// attention, norms, routers, shared experts). Heap bytes (quants + f32 scales), the unit the Worker's
// HOT_BUDGET_MB check counts, so a plan that fits here fits there.
import { objectNames, tensorNames, type Manifest } from '../format/manifest';
import { canQuantizeRows, memoryBytes, type DType } from '../format/quant';

export interface EdgeSizes {
  /** trunk (incl. shared experts and routers): always resident, counts against every budget */
  fixedBytes: number;
  /** expertBytes[l][e] at the manifest's dtype */
  expertBytes: number[][];
  /** expertBytesQ4[l][e] if re-quantized to q4_0; null where that would not save bytes or cannot be done */
  expertBytesQ4: (number | null)[][];
}

export function edgeSizes(manifest: Manifest): EdgeSizes {
  const { numLayers, numExperts } = manifest.architecture;
  let fixedBytes = 0;
  for (const entry of Object.values(manifest.tensors)) {
    if (entry.object === objectNames.trunk) fixedBytes += memoryBytes(entry.dtype, numel(entry.shape));
  }
  const expertBytes: number[][] = [];
  const expertBytesQ4: (number | null)[][] = [];
  for (let l = 0; l < numLayers; l++) {
    expertBytes.push([]);
    expertBytesQ4.push([]);
    for (let e = 0; e < numExperts; e++) {
      let bytes = 0;
      let q4: number | null = 0;
      for (const name of [tensorNames.expertGate(l, e), tensorNames.expertUp(l, e), tensorNames.expertDown(l, e)]) {
        const t = manifest.tensors[name];
        if (!t) throw new Error(`the manifest has no tensor ${name}`);
        const n = numel(t.shape);
        bytes += memoryBytes(t.dtype, n);
        const cols = t.shape[t.shape.length - 1];
        q4 = q4 !== null && canQuantizeRows('q4_0', cols) ? q4 + memoryBytes('q4_0' as DType, n) : null;
      }
      expertBytes[l].push(bytes);
      expertBytesQ4[l].push(q4 !== null && q4 < bytes ? q4 : null);
    }
  }
  return { fixedBytes, expertBytes, expertBytesQ4 };
}

/** Sum of every routed expert's bytes (what "x% of the expert bytes" refers to). */
export function totalExpertBytes(s: EdgeSizes): number {
  return s.expertBytes.reduce((a, row) => a + row.reduce((b, v) => b + v, 0), 0);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// Turns a hot-set spec into the concrete experts per layer for one model, validated against its manifest
// (layers and experts exist, no duplicates) and the memory budget (HOT_BUDGET_MB, in heap bytes).
// Without routing statistics, `auto` and `<p>%` take experts in a rotating window per layer
// (layer l starts at expert l*n mod E), so every expert is hot in some layer and cold in another.
import { memoryBytes } from '../format/quant';
import { tensorNames, type Manifest } from '../format/manifest';
import { HotSetError, type HotSetSpec } from './spec';

export interface HotSet {
  /** layers[l] = the resident experts of layer l, ascending. */
  readonly layers: readonly (readonly number[])[];
  /** Heap bytes these experts take (values plus f32 scales of gate, up, down). */
  readonly bytes: number;
  readonly count: number;
}

/** Heap bytes of one expert as the Worker holds it. */
export function expertHeapBytes(manifest: Manifest, layer: number, expert: number): number {
  const t = tensorNames;
  let bytes = 0;
  for (const name of [t.expertGate(layer, expert), t.expertUp(layer, expert), t.expertDown(layer, expert)]) {
    const e = manifest.tensors[name];
    if (!e) throw new HotSetError(`the manifest has no tensor ${name}`);
    bytes += memoryBytes(e.dtype, e.shape.reduce((a, b) => a * b, 1));
  }
  return bytes;
}

export function resolveHotSet(spec: HotSetSpec, manifest: Manifest, budgetBytes: number | null): HotSet {
  const { numLayers: L, numExperts: E } = manifest.architecture;
  const size = (l: number, e: number) => expertHeapBytes(manifest, l, e);
  const rotation = (l: number, n: number) => Array.from({ length: E }, (_, i) => (l * n + i) % E);
  let layers: number[][];
  switch (spec.kind) {
    case 'all':
      layers = Array.from({ length: L }, () => Array.from({ length: E }, (_, e) => e));
      break;
    case 'none':
      layers = Array.from({ length: L }, () => []);
      break;
    case 'share': {
      const n = Math.min(E, Math.round((spec.percent / 100) * E));
      layers = Array.from({ length: L }, (_, l) => rotation(l, n).slice(0, n));
      break;
    }
    case 'auto': {
      if (budgetBytes === null) {
        layers = Array.from({ length: L }, () => Array.from({ length: E }, (_, e) => e));
        break;
      }
      // round-robin over layers, each taking its next expert while the budget holds
      layers = Array.from({ length: L }, () => []);
      const perLayer = Math.max(1, Math.floor(budgetBytes / (L * size(0, 0))));
      let used = 0;
      for (let i = 0; i < E; i++) {
        for (let l = 0; l < L; l++) {
          const e = rotation(l, Math.min(perLayer, E))[i];
          if (used + size(l, e) > budgetBytes) continue;
          used += size(l, e);
          layers[l].push(e);
        }
      }
      break;
    }
    case 'explicit': {
      layers = Array.from({ length: L }, () => []);
      for (const [l, experts] of spec.layers) {
        if (l >= L) throw new HotSetError(`unknown layer ${l}: the model has ${L} layers (0..${L - 1})`, `layers.${l}`);
        const seen = new Set<number>();
        experts.forEach((e, i) => {
          if (e >= E) throw new HotSetError(`unknown expert ${e} in layer ${l}: the model has ${E} experts per layer (0..${E - 1})`, `layers.${l}[${i}]`);
          if (seen.has(e)) throw new HotSetError(`expert ${e} is listed twice in layer ${l}`, `layers.${l}[${i}]`);
          seen.add(e);
        });
        layers[l] = [...experts];
      }
      break;
    }
  }
  for (const row of layers) row.sort((a, b) => a - b);
  let bytes = 0;
  let count = 0;
  layers.forEach((row, l) => row.forEach((e) => { bytes += size(l, e); count++; }));
  if (budgetBytes !== null && bytes > budgetBytes) {
    throw new HotSetError(
      `the hot set needs ${bytes} bytes for ${count} experts, over the budget of ${budgetBytes} bytes (HOT_BUDGET_MB)`,
      'layers',
      'hot_set_over_budget',
    );
  }
  return Object.freeze({ layers: Object.freeze(layers.map((r) => Object.freeze(r))), bytes, count });
}

/** The {"layers": {...}} form of a hot set (every layer listed, empty ones too). */
export function hotSetLayersJson(h: HotSet): Record<string, number[]> {
  return Object.fromEntries(h.layers.map((row, l) => [String(l), [...row]]));
}

export function sameHotSet(a: HotSet, b: HotSet): boolean {
  return a.layers.length === b.layers.length && a.layers.every((row, l) => row.length === b.layers[l].length && row.every((e, i) => e === b.layers[l][i]));
}

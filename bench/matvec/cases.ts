// The benchmark's cases: the expert shapes of granite-3.0-1b-a400m and of the default model, in q8_0 and q4_0,
// for every WASM executor the runtime can run. Runtime-agnostic, so the Worker gets the same list as Node.
import type { CaseSpec, Executor, Quant } from './measure';

export interface Shape {
  name: string;
  rows: number;
  cols: number;
}

/** Expert dims of a model: gate/up are (I, H), down is (H, I). */
export interface ExpertDims {
  model: string;
  hidden: number; // H
  intermediate: number; // I
}

// granite-3.0-1b-a400m: hidden_size 1024, intermediate_size (per expert) 512
export const GRANITE: ExpertDims = { model: 'granite-1b-a400m', hidden: 1024, intermediate: 512 };
// Until models/default/manifest.json exists the default model's shapes are a 64x64 placeholder.
export const DEFAULT_PLACEHOLDER: ExpertDims = { model: 'default', hidden: 64, intermediate: 64 };

export function expertShapes(d: ExpertDims): Shape[] {
  const gateUp = { name: `${d.model} gate/up`, rows: d.intermediate, cols: d.hidden };
  const down = { name: `${d.model} down`, rows: d.hidden, cols: d.intermediate };
  return d.hidden === d.intermediate ? [{ ...gateUp, name: `${d.model} gate/up/down` }] : [gateUp, down];
}

export const QUANTS: readonly Quant[] = ['q8_0', 'q4_0'];
export const EXECUTORS: readonly Executor[] = ['wasm-scalar', 'wasm-simd', 'wasm-relaxed', 'wasm-relaxed-fused'];

export function buildCases(models: readonly ExpertDims[], executors: readonly Executor[]): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (const m of models)
    for (const s of expertShapes(m))
      for (const quant of QUANTS)
        for (const executor of executors) out.push({ name: s.name, quant, rows: s.rows, cols: s.cols, executor });
  return out;
}

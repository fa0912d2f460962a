// How long the backend takes for one expert call, on a measured device (the CPU backend: time per pair, from its
// measured expert throughput) or on a GPU from its published figures (a roofline: weights read once per call at
// the memory bandwidth, or the call's FLOPs at peak tensor throughput, whichever is longer).
import type { ModelShape } from './model-shape';

export interface BackendSpeed {
  /** 'measured': every pair costs expertBytes / gbps (the CPU backend computes each pair apart);
   *  'roofline': max(distinct experts' bytes / bandwidth, FLOPs / peak) */
  kind: 'measured' | 'roofline';
  gbps: number;
  tflops?: number;
  /** fixed cost of a call (protocol, dispatch), ms */
  overheadMs: number;
  label: string;
}

/** Distinct experts among `pairs` picks spread evenly over `experts` experts (expected value). */
export function distinctExperts(pairs: number, experts: number): number {
  if (experts <= 0 || pairs <= 0) return 0;
  if (experts <= 1) return Math.min(1, pairs);
  return experts * (1 - Math.pow(1 - 1 / experts, pairs));
}

/** Milliseconds of device time for one call (or one merged batch) of `pairs` (token, expert) pairs touching
 *  `distinct` different experts; the fixed overhead included once. */
export function callMs(speed: BackendSpeed, shape: ModelShape, pairs: number, distinct: number): number {
  if (pairs <= 0) return 0;
  if (speed.kind === 'measured') return speed.overheadMs + (pairs * shape.expertBytes) / (speed.gbps * 1e6);
  const memMs = (distinct * shape.expertBytes) / (speed.gbps * 1e6);
  const flopMs = speed.tflops ? (pairs * 2 * shape.expertParams) / (speed.tflops * 1e9) : 0;
  return speed.overheadMs + Math.max(memMs, flopMs);
}

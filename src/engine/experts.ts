// The expert seam: the engine hands a layer's routed tokens to an ExpertExecutor and never asks whether
// the experts run here (WASM, hot set) or on the GPU backend (cold set).
import type { Kernels, Ptr } from '../kernels/types';
import type { ModelWeights } from './model';

/** routes[t][slot] = the expert chosen for token t in that top-k slot, with its routing weight. */
export interface ExpertRoute {
  readonly expert: number;
  readonly weight: number;
}

export interface ExpertBatch {
  readonly layer: number;
  readonly x: Ptr; // (nTok, H) normalised hidden states
  readonly nTok: number;
  readonly routes: readonly (readonly ExpertRoute[])[];
  readonly out: Ptr; // (nTok, topK, H): out[t][slot] = expert(x[t]), unweighted
}

export interface ExpertExecutor {
  /** Fill batch.out for every (token, slot). May be asynchronous (remote experts). */
  run(batch: ExpertBatch): Promise<void> | void;
}

/** Every expert resident in this heap: tokens grouped by expert so each weight is read once per batch. */
export class LocalExperts implements ExpertExecutor {
  constructor(private readonly k: Kernels, private readonly weights: ModelWeights) {}

  run(b: ExpertBatch): void {
    const H = this.weights.arch.hiddenSize;
    const K = this.weights.arch.topK;
    const heap = this.k.heap;
    const byExpert = new Map<number, number[]>(); // expert -> flat (t*K + slot) indices
    b.routes.forEach((slots, t) => slots.forEach((r, s) => {
      const list = byExpert.get(r.expert) ?? [];
      list.push(t * K + s);
      byExpert.set(r.expert, list);
    }));
    const gathered = heap.alloc(b.nTok * H * 4);
    const result = heap.alloc(b.nTok * H * 4);
    try {
      for (const [e, slots] of byExpert) {
        const w = this.weights.experts[b.layer][e];
        if (!w) throw new Error(`expert ${b.layer}/${e} is not resident`);
        const g = heap.f32(gathered, slots.length * H);
        const x = heap.f32(b.x, b.nTok * H);
        slots.forEach((ts, i) => g.set(x.subarray(Math.floor(ts / K) * H, Math.floor(ts / K) * H + H), i * H));
        this.k.ffnSwiglu(w.gate, w.up, w.down, gathered, result, slots.length);
        const y = heap.f32(result, slots.length * H);
        const out = heap.f32(b.out, b.nTok * K * H);
        slots.forEach((ts, i) => out.set(y.subarray(i * H, i * H + H), ts * H));
      }
    } finally {
      heap.release(result);
      heap.release(gathered);
    }
  }
}

// The expert seam: the engine hands a layer's routed tokens to an ExpertExecutor and never asks whether
// the experts run here (WASM, hot set) or on the GPU backend (cold set).
import type { Kernels, Ptr } from '../kernels/types';
import { groupPairs } from '../protocol/expert-call';
import type { HeadExecutor } from './head';
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
  /**
   * (nTok, numExperts) f32: the router's scores of every expert, as route() left them: probabilities after the
   * softmax, or raw logits under routerTopKBeforeSoftmax. Only their order is meant to be used (substitutes).
   */
  readonly scores: Ptr;
  readonly out: Ptr; // (nTok, topK, H): out[t][slot] = expert(x[t]), unweighted
}

export interface ExpertExecutor {
  /** Fill batch.out for every (token, slot). May be asynchronous (remote experts). */
  run(batch: ExpertBatch): Promise<void> | void;
  /** Where the embedding and output head run when not in the weights' heap (an expert shard holds them). */
  readonly head?: HeadExecutor;
  /**
   * Routing that happened elsewhere: `tokens` whole forward passes whose routers picked expert e of layer l
   * counts[l][e] times (a prompt the backend prefilled). Decorators that watch routing count it; others ignore it.
   */
  observe?(counts: readonly (readonly number[])[], tokens: number): void;
}

/** One expert applied to one token, written to out[token][slot] (an executor's unit of work). */
export interface ExpertJob {
  readonly token: number;
  readonly slot: number;
  readonly expert: number;
}

/** Every expert resident in this heap: tokens grouped by expert so each weight is read once per batch. */
export class LocalExperts implements ExpertExecutor {
  constructor(private readonly k: Kernels, private readonly weights: ModelWeights) {}

  run(b: ExpertBatch): void {
    const jobs: ExpertJob[] = [];
    b.routes.forEach((slots, token) => slots.forEach((r, slot) => jobs.push({ token, slot, expert: r.expert })));
    this.runJobs(b, jobs);
  }

  /** Compute the given (token, slot, expert) jobs of a batch; slots not listed are left untouched. */
  runJobs(b: ExpertBatch, jobs: readonly ExpertJob[]): void {
    if (jobs.length === 0) return;
    const H = this.weights.arch.hiddenSize;
    const K = this.weights.arch.topK;
    const heap = this.k.heap;
    const byExpert = groupPairs(jobs.length, (i) => jobs[i].expert);
    let most = 0;
    for (const g of byExpert) most = Math.max(most, g.members.length);
    const gathered = heap.alloc(most * H * 4);
    const result = heap.alloc(most * H * 4);
    try {
      for (const { key: e, members } of byExpert) {
        const w = this.weights.experts[b.layer][e];
        if (!w) throw new Error(`expert ${b.layer}/${e} is not resident`);
        const g = heap.f32(gathered, members.length * H);
        const x = heap.f32(b.x, b.nTok * H);
        members.forEach((m, i) => g.set(x.subarray(jobs[m].token * H, jobs[m].token * H + H), i * H));
        this.k.ffnSwiglu(w.gate, w.up, w.down, gathered, result, members.length);
        const y = heap.f32(result, members.length * H);
        const out = heap.f32(b.out, b.nTok * K * H);
        members.forEach((m, i) => out.set(y.subarray(i * H, i * H + H), (jobs[m].token * K + jobs[m].slot) * H));
      }
    } finally {
      heap.release(result);
      heap.release(gathered);
    }
  }
}

// A decorator ExpertExecutor that counts which experts each router picked, then delegates: routing
// statistics without touching the engine (the profiler wraps the all-local executor; the Worker wraps each
// generation's split executor, so it counts what the router asked for, whatever the cold policy then does).
import type { ExpertBatch, ExpertExecutor } from '../engine/experts';
import type { HeadExecutor } from '../engine/head';
import { emptyCounts, type RoutingCounts } from './stats';

export class RoutingRecorder implements ExpertExecutor {
  readonly head?: HeadExecutor;
  private current: RoutingCounts;
  /** routings of the forward pass under way, committed at its last layer: a pass that fails midway (a cold
   *  expert under DEGRADED_POLICY=error, a cancellation) adds nothing, so every layer sums to tokens x topK */
  private pending: number[][];

  constructor(private readonly inner: ExpertExecutor, private readonly numLayers: number, private readonly numExperts: number) {
    this.current = emptyCounts(numLayers, numExperts);
    this.pending = emptyCounts(numLayers, numExperts).counts;
    this.head = inner.head; // a decorator of the experts passes the head through
  }

  run(batch: ExpertBatch): Promise<void> | void {
    if (batch.layer === 0) for (const row of this.pending) row.fill(0); // a new pass: drop what a failed one left
    const row = this.pending[batch.layer];
    for (const slots of batch.routes) for (const r of slots) row[r.expert]++;
    if (batch.layer === this.numLayers - 1) {
      this.pending.forEach((p, l) => {
        const c = this.current.counts[l];
        for (let e = 0; e < p.length; e++) c[e] += p[e];
        p.fill(0);
      });
      this.current.tokens += batch.nTok;
    }
    return this.inner.run(batch);
  }

  observe(counts: readonly (readonly number[])[], tokens: number): void {
    counts.forEach((row, l) => row.forEach((v, e) => (this.current.counts[l][e] += v)));
    this.current.tokens += tokens;
    this.inner.observe?.(counts, tokens);
  }

  /** The counts so far (a copy). */
  snapshot(): RoutingCounts {
    return { tokens: this.current.tokens, prompts: this.current.prompts, counts: this.current.counts.map((r) => [...r]) };
  }

  /** The counts so far, and start again from zero. */
  take(): RoutingCounts {
    const c = this.current;
    this.current = emptyCounts(this.numLayers, this.numExperts);
    return c;
  }
}

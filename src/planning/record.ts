// A decorator ExpertExecutor that counts which experts each router picked, then delegates: routing
// statistics without touching the engine (the profiler wraps the all-local executor; the Worker can wrap
// whatever executor a generation uses).
import type { ExpertBatch, ExpertExecutor } from '../engine/experts';
import { emptyCounts, type RoutingCounts } from './stats';

export class RoutingRecorder implements ExpertExecutor {
  private current: RoutingCounts;

  constructor(private readonly inner: ExpertExecutor, private readonly numLayers: number, private readonly numExperts: number) {
    this.current = emptyCounts(numLayers, numExperts);
  }

  run(batch: ExpertBatch): Promise<void> | void {
    const row = this.current.counts[batch.layer];
    for (const slots of batch.routes) for (const r of slots) row[r.expert]++;
    // every token passes every layer once: count tokens at layer 0 only
    if (batch.layer === 0) this.current.tokens += batch.nTok;
    return this.inner.run(batch);
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

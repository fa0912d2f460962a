// An ExpertExecutor wrapper that records, per layer call, the whole expert stage, the hot experts' compute
// and the backend round trips (split benchmark only).
import type { MoeUsage } from '../../src/engine/api';
import type { ExpertBatch, ExpertExecutor } from '../../src/engine/experts';
import type { SplitExperts } from '../../src/remote/split-experts';

export interface LayerCall {
  layer: number;
  /** the executor's whole run(): hot compute, send, wait */
  stageMs: number;
  /** hot experts computed here */
  hotMs: number;
  /** backend round trips that completed in this call (send -> reply as seen here) */
  remoteMs: number;
  /** cold pairs sent */
  cold: number;
}

export class TimingExperts implements ExpertExecutor {
  calls: LayerCall[] = [];

  constructor(private readonly inner: SplitExperts, private readonly usage: MoeUsage) {}

  async run(b: ExpertBatch): Promise<void> {
    const t0 = performance.now();
    const hot0 = this.inner.localMs;
    const remote0 = this.usage.remote_ms;
    const cold0 = this.usage.cold_calls;
    await this.inner.run(b);
    this.calls.push({
      layer: b.layer,
      stageMs: performance.now() - t0,
      hotMs: this.inner.localMs - hot0,
      remoteMs: this.usage.remote_ms - remote0,
      cold: this.usage.cold_calls - cold0,
    });
  }

  take(): LayerCall[] {
    const c = this.calls;
    this.calls = [];
    return c;
  }
}

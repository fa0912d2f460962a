// Merges expert calls that arrive together (same event-loop turn, or within a small window, or while the device
// is busy) and groups their rows by (layer, expert), so each expert's weights are read once for all tokens of
// all calls; results are split back per call in pair order. Rows travel to the device in the dtype their call
// arrived in (q8_0 blocks from the Worker are gathered as blocks, never widened to f32 here).
import { allocRows, copyRow, type ActDType } from '../src/protocol/activations';
import { groupPairs, type ExpertCall } from '../src/protocol/expert-call';
import type { ExpertDevice, ExpertGroup } from './devices/device';

export interface BatchStats {
  calls: number;
  pairs: number;
  groups: number;
  seconds: number; // wall time of the device work
}

export interface BatcherOptions {
  /** Wait this long for more calls after the first (0: only calls of the same event-loop turn). */
  windowMs?: number;
  /** Batches on the device at once; calls arriving meanwhile wait and form the next batch. */
  maxInFlight?: number;
  onBatch?: (s: BatchStats) => void;
}

interface Pending {
  call: ExpertCall;
  resolve: (rows: Float32Array) => void;
  reject: (e: unknown) => void;
}

export class Batcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly windowMs: number;
  private readonly maxInFlight: number;

  constructor(private readonly device: ExpertDevice, private readonly opts: BatcherOptions = {}) {
    this.windowMs = opts.windowMs ?? 0;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 2);
  }

  /** Rows (nPairs, H): row i = expert(experts[i])(x[tokens[i]]), unweighted (the call's weights are not applied). */
  submit(call: ExpertCall): Promise<Float32Array> {
    if (call.tokens.length === 0) return Promise.resolve(new Float32Array(0));
    return new Promise((resolve, reject) => {
      this.queue.push({ call, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const go = () => { this.scheduled = false; this.flush(); };
    if (this.windowMs > 0) setTimeout(go, this.windowMs);
    else setImmediate(go);
  }

  private flush(): void {
    if (this.queue.length === 0 || this.inFlight >= this.maxInFlight) return; // a finishing batch flushes again
    const batch = this.queue;
    this.queue = [];
    this.inFlight++;
    void this.run(batch).finally(() => {
      this.inFlight--;
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async run(batch: Pending[]): Promise<void> {
    const t0 = performance.now();
    const byLayer = new Map<number, Pending[]>();
    for (const p of batch) {
      const list = byLayer.get(p.call.layer) ?? [];
      list.push(p);
      byLayer.set(p.call.layer, list);
    }
    let pairs = 0;
    let groups = 0;
    const settled = await Promise.all([...byLayer].map(async ([layer, calls]) => {
      try {
        const plan = planLayer(calls.map((p) => p.call));
        pairs += plan.callOf.length;
        groups += plan.groups.length;
        const ys = await this.device.run(layer, plan.groups);
        return { calls, outs: scatter(calls.map((p) => p.call), plan, ys) };
      } catch (error) {
        return { calls, error };
      }
    }));
    // stats first: whoever reads metrics after a reply sees the batch that produced it
    this.opts.onBatch?.({ calls: batch.length, pairs, groups, seconds: (performance.now() - t0) / 1000 });
    for (const r of settled) r.calls.forEach((p, i) => ('outs' in r && r.outs ? p.resolve(r.outs[i]) : p.reject(r.error)));
  }
}

/** The layer's pairs, numbered across its calls: pair j is pair pairOf[j] of call callOf[j]. */
interface LayerPlan {
  groups: ExpertGroup[];
  /** members[g][r] = the pair (numbered across calls) of row r of group g */
  members: (readonly number[])[];
  callOf: number[];
  pairOf: number[];
}

// One group per (expert, activation dtype) (calls of one model all send one dtype): its rows gathered as they are.
const DTYPE_KEY: Readonly<Record<ActDType, number>> = { f32: 0, f16: 1, q8_0: 2 };

function planLayer(calls: readonly ExpertCall[]): LayerPlan {
  const callOf: number[] = [];
  const pairOf: number[] = [];
  calls.forEach((c, ci) => {
    for (let i = 0; i < c.tokens.length; i++) { callOf.push(ci); pairOf.push(i); }
  });
  const H = calls[0].hidden;
  const byExpert = groupPairs(callOf.length, (j) => {
    const c = calls[callOf[j]];
    return c.experts[pairOf[j]] * 3 + DTYPE_KEY[c.activations.dtype];
  });
  const groups = byExpert.map(({ key, members }): ExpertGroup => {
    const x = allocRows(calls[callOf[members[0]]].activations.dtype, members.length, H);
    members.forEach((j, r) => {
      const c = calls[callOf[j]];
      copyRow(c.activations, c.tokens[pairOf[j]], x, r, H);
    });
    return { expert: Math.floor(key / 3), x, n: members.length };
  });
  return { groups, members: byExpert.map((g) => g.members), callOf, pairOf };
}

// Group results y (n, H) back into each call's (nPairs, H) rows.
function scatter(calls: readonly ExpertCall[], plan: LayerPlan, ys: readonly Float32Array[]): Float32Array[] {
  const H = calls[0].hidden;
  const outs = calls.map((c) => new Float32Array(c.tokens.length * H));
  plan.members.forEach((rows, g) => {
    const y = ys[g];
    if (!y || y.length !== rows.length * H) throw new Error(`device returned ${y?.length} values for group ${g}, expected ${rows.length * H}`);
    rows.forEach((j, r) => outs[plan.callOf[j]].set(y.subarray(r * H, r * H + H), plan.pairOf[j] * H));
  });
  return outs;
}

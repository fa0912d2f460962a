// Merges expert calls that arrive together (same event-loop turn, or within a small window, or while the device
// is busy) and groups their rows by (layer, expert), so each expert's weights are read once for all tokens of
// all calls; results are split back per call in request order.
import type { ExpertDevice, ExpertGroup } from './devices/device';

/** One call: x (nTok, H) f32 and its pairs (token, expert). */
export interface BatchCall {
  readonly layer: number;
  readonly hidden: number;
  readonly x: Float32Array;
  readonly tokens: ArrayLike<number>;
  readonly experts: ArrayLike<number>;
}

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
  call: BatchCall;
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

  /** Rows (nPairs, H): row i = expert(experts[i])(x[tokens[i]]), unweighted. */
  submit(call: BatchCall): Promise<Float32Array> {
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
        pairs += plan.pairs;
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

/** Where each gathered row comes from: members[g][j] = [call index, pair index] of row j of group g. */
interface LayerPlan {
  groups: ExpertGroup[];
  members: [number, number][][];
  pairs: number;
}

// x rows of every (call, pair) gathered per expert: group x (n, H).
function planLayer(calls: readonly BatchCall[]): LayerPlan {
  const byExpert = new Map<number, [number, number][]>();
  let pairs = 0;
  calls.forEach((c, ci) => {
    for (let i = 0; i < c.tokens.length; i++) {
      const list = byExpert.get(c.experts[i]) ?? [];
      list.push([ci, i]);
      byExpert.set(c.experts[i], list);
    }
    pairs += c.tokens.length;
  });
  const groups: ExpertGroup[] = [];
  const members: [number, number][][] = [];
  for (const [expert, rows] of byExpert) {
    const H = calls[0].hidden;
    const x = new Float32Array(rows.length * H);
    rows.forEach(([ci, i], j) => {
      const c = calls[ci];
      const t = c.tokens[i];
      x.set(c.x.subarray(t * H, t * H + H), j * H);
    });
    groups.push({ expert, x, n: rows.length });
    members.push(rows);
  }
  return { groups, members, pairs };
}

// Group results y (n, H) back into each call's (nPairs, H) rows.
function scatter(calls: readonly BatchCall[], plan: LayerPlan, ys: readonly Float32Array[]): Float32Array[] {
  const outs = calls.map((c) => new Float32Array(c.tokens.length * c.hidden));
  plan.members.forEach((rows, g) => {
    const y = ys[g];
    const H = calls[0].hidden;
    if (!y || y.length !== rows.length * H) throw new Error(`device returned ${y?.length} values for group ${g}, expected ${rows.length * H}`);
    rows.forEach(([ci, i], j) => outs[ci].set(y.subarray(j * H, j * H + H), i * H));
  });
  return outs;
}

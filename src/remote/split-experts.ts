// The split executor: hot experts run here (LocalExperts), experts an expert-shard Worker holds run there, cold
// ones by policy. Shard and remote requests are sent before the hot experts run and awaited after, so the round
// trips hide behind local work. The first backend failure degrades the rest of the generation's cold picks to
// DEGRADED_POLICY (or fails it: 502/504); the first shard failure sends the rest of its picks down the cold path
// (the backend holds every expert) and flags the generation degraded the same way.
import type { ColdPolicy, DegradedPolicy, DegradedReason, MoeUsage } from '../engine/api';
import { LocalExperts, type ExpertBatch, type ExpertExecutor, type ExpertJob } from '../engine/experts';
import type { HeadExecutor } from '../engine/head';
import type { ModelWeights } from '../engine/model';
import type { Kernels } from '../kernels/types';
import { encodeRows, type ActDType } from '../protocol/activations';
import { usedRows } from '../protocol/expert-call';
import { asShardError, BackendError, BackendUnavailableError } from './errors';
import { planFallback, type ColdPick } from './policies';
import type { RemoteExperts, RemoteReply } from './session';
import type { EdgeExperts } from './shard-tier';

export interface SplitOptions {
  kernels: Kernels;
  weights: ModelWeights;
  policy: ColdPolicy;
  degradedPolicy: DegradedPolicy;
  /** The generation's backend session; null when no backend is configured. */
  remote: RemoteExperts | null;
  /** The generation's expert-shard Workers (SHARD_LAYOUT); null when there are none. */
  shards?: EdgeExperts | null;
  /** Activation dtype on the wire: q8_0 for quantized experts (exact), f32 otherwise. */
  actDType: ActDType;
  /** Counters of this generation, updated as it runs (usage.moe). */
  usage: MoeUsage;
  /** Benchmarks only: wait for the cold reply before the hot work (no overlap), to measure what overlap saves. */
  serialize?: boolean;
}

export function newMoeUsage(policy: ColdPolicy): MoeUsage {
  return { hot_hits: 0, shard_hits: 0, cold_calls: 0, remote_calls: 0, remote_ms: 0, remote_wait_ms: 0, degraded: null, policy, prefill: 'local', prefill_kv_bytes: 0, prefill_ms: 0, speculative_drafted: 0, speculative_accepted: 0, verification_passes: 0 };
}

export class SplitExperts implements ExpertExecutor {
  private readonly local: LocalExperts;
  /** Resident experts per layer, ascending. */
  private readonly resident: number[][];
  private failure: BackendError | null = null;
  private shardFailure: BackendError | null = null;
  /** Time spent computing experts here (ms; stands still in workerd, whose clock moves only across I/O). */
  localMs = 0;

  /** The head shard's head, when the layout puts the head on a shard (forward() asks the executor for it). */
  readonly head?: HeadExecutor;

  constructor(private readonly o: SplitOptions) {
    this.head = o.shards?.head;
    this.local = new LocalExperts(o.kernels, o.weights);
    this.resident = o.weights.experts.map((row) => row.flatMap((e, i) => (e ? [i] : [])));
  }

  async run(b: ExpertBatch): Promise<void> {
    const { usage } = this.o;
    const row = this.o.weights.experts[b.layer];
    const shards = this.shardFailure ? null : (this.o.shards ?? null);
    const hot: ExpertJob[] = [];
    const edge: ColdPick[] = [];
    const cold: ColdPick[] = [];
    b.routes.forEach((slots, token) =>
      slots.forEach((r, slot) => {
        const pick = { token, slot, expert: r.expert };
        if (row[r.expert]) hot.push(pick);
        else if (shards?.owns(b.layer, r.expert)) edge.push(pick);
        else cold.push(pick);
      }),
    );
    usage.hot_hits += hot.length;
    usage.shard_hits += edge.length;
    usage.cold_calls += cold.length;
    if (cold.length === 0 && edge.length === 0) return this.runLocal(b, hot);

    const policy = cold.length > 0 ? this.coldPolicy() : null;
    // everything that travels leaves before the hot work, so the round trips overlap it
    const toShards = edge.length > 0 ? this.send(shards!, b, edge) : null;
    const toBackend = policy === 'remote' ? this.send(this.o.remote!, b, cold) : null;
    if (toBackend) usage.remote_calls++;
    if (this.o.serialize) await Promise.all([toShards?.catch(() => {}), toBackend?.catch(() => {})]);
    else if (hot.length > 0) await yieldToIo(); // ws.send() only queues: the frame leaves when we yield
    if (policy === null || policy === 'remote') this.runLocal(b, hot);
    else this.fallback(b, cold, policy, hot); // one pass over the experts for hot picks and substitutes
    const localDone = now();
    if (toShards) {
      try {
        this.received(b, edge, await toShards, localDone);
      } catch (e) {
        this.shardDown(e);
        await this.runCold(b, edge); // the backend holds every expert: the shard's picks go where cold ones go
      }
    }
    if (toBackend) {
      try {
        this.received(b, cold, await toBackend, localDone);
      } catch (e) {
        this.fallback(b, cold, this.degrade(e), []);
      }
    }
  }

  /** Cold picks computed after the hot work: remote when the policy allows, else (or on failure) by fallback. */
  private async runCold(b: ExpertBatch, cold: readonly ColdPick[]): Promise<void> {
    const policy = this.coldPolicy();
    if (policy !== 'remote') return this.fallback(b, cold, policy, []);
    try {
      this.received(b, cold, await this.send(this.o.remote!, b, cold), now());
    } catch (e) {
      this.fallback(b, cold, this.degrade(e), []);
    }
  }

  private received(b: ExpertBatch, picks: readonly ColdPick[], reply: RemoteReply, localDone: number): void {
    this.o.usage.remote_wait_ms += Math.max(0, now() - localDone);
    this.o.usage.remote_ms += reply.roundTripMs;
    this.writeRows(b, picks, reply.values);
  }

  /** A shard failed: flag the generation (first reason wins), stop using the shards, or fail under DEGRADED_POLICY=error. */
  private shardDown(e: unknown): void {
    const err = e instanceof BackendError ? e : new BackendUnavailableError('protocol', String((e as Error)?.message ?? e), e);
    if (!this.shardFailure) {
      this.shardFailure = asShardError(err);
      this.o.usage.degraded ??= err.reason as DegradedReason;
      this.o.shards?.close();
    }
    if (this.o.degradedPolicy === 'error') throw this.shardFailure;
  }

  private runLocal(b: ExpertBatch, jobs: readonly ExpertJob[]): void {
    const t0 = now();
    this.local.runJobs(b, jobs);
    this.localMs += now() - t0;
  }

  /** The policy for cold picks now: the requested one, or the degraded one once the backend failed. */
  private coldPolicy(): ColdPolicy {
    if (this.o.policy !== 'remote') return this.o.policy;
    if (!this.failure && !this.o.remote) {
      return this.degrade(new BackendUnavailableError('no_backend', 'policy remote needs BACKEND_URL, which is not set'));
    }
    if (this.failure) return this.degrade(this.failure);
    return 'remote';
  }

  /** Record the failure (first reason wins) and return the local policy, or throw under DEGRADED_POLICY=error. */
  private degrade(e: unknown): 'substitute' | 'drop' {
    const err = e instanceof BackendError ? e : new BackendUnavailableError('protocol', String((e as Error)?.message ?? e), e);
    if (!this.failure) {
      this.failure = err;
      this.o.usage.degraded ??= err.reason as DegradedReason;
      this.o.remote?.close();
    }
    if (this.o.degradedPolicy === 'error') throw this.failure;
    return this.o.degradedPolicy;
  }

  private send(to: RemoteExperts, b: ExpertBatch, cold: readonly ColdPick[]): Promise<RemoteReply> {
    const H = this.o.weights.arch.hiddenSize;
    // only the tokens that have a cold pick travel, renumbered 0..n-1, read from the heap and encoded in one pass
    const used = usedRows(cold.map((c) => c.token));
    const p = to.call({
      layer: b.layer,
      hidden: H,
      nTok: used.rows.length,
      tokens: used.tokens,
      experts: cold.map((c) => c.expert),
      weights: cold.map((c) => b.routes[c.token][c.slot].weight),
      activations: encodeRows(this.o.kernels.heap.f32(b.x, b.nTok * H), H, used.rows, this.o.actDType),
    });
    p.catch(() => {}); // awaited after the hot work; never an unhandled rejection if that work throws
    return p;
  }

  private writeRows(b: ExpertBatch, cold: readonly ColdPick[], values: Float32Array): void {
    const H = this.o.weights.arch.hiddenSize;
    const K = this.o.weights.arch.topK;
    const out = this.o.kernels.heap.f32(b.out, b.nTok * K * H); // a fresh view: the heap may have grown meanwhile
    cold.forEach((c, i) => out.set(values.subarray(i * H, i * H + H), (c.token * K + c.slot) * H));
  }

  /** Cold picks under a local policy; `hot` jobs not yet computed run in the same pass. */
  private fallback(b: ExpertBatch, cold: readonly ColdPick[], policy: 'substitute' | 'drop', hot: readonly ExpertJob[]): void {
    const H = this.o.weights.arch.hiddenSize;
    const K = this.o.weights.arch.topK;
    const E = this.o.weights.arch.numExperts;
    const plan = planFallback({
      policy,
      routes: b.routes,
      cold,
      resident: this.resident[b.layer],
      scores: (t) => this.o.kernels.heap.f32(b.scores + t * E * 4, E), // read before runLocal, which may grow the heap
    });
    this.runLocal(b, [...hot, ...plan.jobs]);
    const out = this.o.kernels.heap.f32(b.out, b.nTok * K * H);
    for (const z of plan.zero) out.fill(0, (z.token * K + z.slot) * H, (z.token * K + z.slot + 1) * H);
    for (const s of plan.scale) {
      const at = (s.token * K + s.slot) * H;
      for (let i = at; i < at + H; i++) out[i] *= s.factor;
    }
  }
}

/**
 * Let the runtime's event loop run once, so a queued WebSocket frame is written before synchronous work.
 * Measured in workerd: send + 60 ms of compute + await a 40 ms round trip took ~110 ms without this, ~62 ms with.
 * Node has setImmediate (setTimeout(0) waits >= 1 ms there); workerd has only timers, which cost nothing.
 */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

// Per-isolate counters exposed at GET /metrics in Prometheus text format: requests, tokens, where the
// routed experts ran (hot hits, cold calls, remote time, degraded generations by reason), what the
// routers asked for (routings per model, layer, expert and profile: the statistics the hot set is planned from),
// and gauges of each loaded model's WASM memory: the part of the isolate the V8 inspector's heap usage leaves out.
import type { GenerateResult, MoeUsage } from '../engine/api';
import { RoutingTally } from '../routing/tally';

/** What the WASM gauges read from a kernel heap (src/kernels/heap.ts): its memory and the allocator's bytes in use. */
export interface HeapGauge {
  readonly memory: WebAssembly.Memory;
  readonly usedBytes: number;
}

export class Metrics {
  private readonly requests = new Map<string, number>(); // `${route}\t${status}` -> count
  private readonly degraded = new Map<string, number>(); // reason -> generations
  private promptTokens = 0;
  private completionTokens = 0;
  private generations = 0;
  private hotHits = 0;
  private shardHits = 0;
  private coldCalls = 0;
  private remoteMs = 0;
  private readonly prefills = { local: 0, remote: 0 };
  private prefillKvBytes = 0;
  private readonly speculation = { drafted: 0, accepted: 0, passes: 0 };
  private readonly prefillFallbacks = new Map<string, number>(); // reason -> generations
  /** model id -> its routing statistics in this isolate (one tally per id, shared by every load of it) */
  private readonly routing = new Map<string, RoutingTally>();
  /**
   * model id -> the kernel heaps of its loads in this isolate (one per hot-set configuration; tests vary it),
   * held weakly: a load nobody keeps (a tool's, a test's) is not kept alive by its gauge.
   */
  private readonly heaps = new Map<string, Set<WeakRef<HeapGauge>>>();

  /** The routing statistics of the model served under `modelId` (created empty on first use). */
  routingTally(modelId: string): RoutingTally {
    let t = this.routing.get(modelId);
    if (!t) this.routing.set(modelId, (t = new RoutingTally()));
    return t;
  }

  /**
   * Counts `heap` in the WASM gauges of `modelId` from now on (from the start of a load: its memory grows as
   * weights arrive). Call the returned function when the load fails, so a forgotten load is not counted.
   */
  trackHeap(modelId: string, heap: HeapGauge): () => void {
    let set = this.heaps.get(modelId);
    if (!set) this.heaps.set(modelId, (set = new Set()));
    const ref = new WeakRef(heap);
    set.add(ref);
    return () => {
      set.delete(ref);
    };
  }

  request(route: string, status: number): void {
    const key = `${route}\t${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** One generation ended (completed, failed or cancelled); `result` is null unless it completed. */
  generation(usage: MoeUsage | null, result: GenerateResult | null): void {
    this.generations++;
    if (result) {
      this.promptTokens += result.promptTokens;
      this.completionTokens += result.completionTokens;
    }
    if (!usage) return;
    this.hotHits += usage.hot_hits;
    this.shardHits += usage.shard_hits;
    this.coldCalls += usage.cold_calls;
    this.remoteMs += usage.remote_ms;
    this.prefills[usage.prefill]++;
    this.prefillKvBytes += usage.prefill_kv_bytes;
    this.speculation.drafted += usage.speculative_drafted;
    this.speculation.accepted += usage.speculative_accepted;
    this.speculation.passes += usage.verification_passes;
    if (usage.prefill_fallback) this.prefillFallbacks.set(usage.prefill_fallback, (this.prefillFallbacks.get(usage.prefill_fallback) ?? 0) + 1);
    if (usage.degraded) this.degraded.set(usage.degraded, (this.degraded.get(usage.degraded) ?? 0) + 1);
  }

  /** `modelIds`: models that get WASM gauges even before a load (0), e.g. the deployment's MODEL_ID. */
  render(modelIds: readonly string[] = []): string {
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) out.push(`${name}${labels} ${Number.isInteger(v) ? v : v.toFixed(3)}`);
    };
    metric('moe_requests_total', 'counter', 'HTTP requests by route and status.', [...this.requests].map(([k, v]) => {
      const [route, status] = k.split('\t');
      return [`{route="${route}",status="${status}"}`, v];
    }));
    metric('moe_generations_total', 'counter', 'Generations ended (completed, failed or cancelled).', [['', this.generations]]);
    metric('moe_tokens_total', 'counter', 'Tokens of completed generations.', [['{kind="prompt"}', this.promptTokens], ['{kind="completion"}', this.completionTokens]]);
    metric('moe_hot_hits_total', 'counter', 'Router picks served by a resident (hot) expert.', [['', this.hotHits]]);
    metric('moe_shard_hits_total', 'counter', 'Router picks served by an expert-shard Worker (SHARD_LAYOUT).', [['', this.shardHits]]);
    metric('moe_cold_calls_total', 'counter', 'Router picks of cold experts (remote, substituted or dropped).', [['', this.coldCalls]]);
    metric('moe_remote_ms_total', 'counter', 'Milliseconds of backend round trips.', [['', this.remoteMs]]);
    metric('moe_degraded_total', 'counter', 'Generations that stopped using the backend, by reason.', [...this.degraded].map(([r, v]) => [`{reason="${r}"}`, v]));
    metric('moe_prefills_total', 'counter', 'Prompts prefilled, by where (remote: the backend\'s prefill call, KV cache streamed here).', [['{where="local"}', this.prefills.local], ['{where="remote"}', this.prefills.remote]]);
    metric('moe_prefill_kv_bytes_total', 'counter', 'Bytes of KV streams received from the backend.', [['', this.prefillKvBytes]]);
    metric('moe_prefill_fallbacks_total', 'counter', 'Prompts meant for the backend that were prefilled here after all, by reason.', [...this.prefillFallbacks].map(([r, v]) => [`{reason="${r}"}`, v]));
    metric('moe_speculative_drafted_total', 'counter', 'Tokens drafted by the resident experts (self-speculative decoding).', [['', this.speculation.drafted]]);
    metric('moe_speculative_accepted_total', 'counter', 'Drafted tokens the exact split accepted (÷ drafted = the acceptance rate).', [['', this.speculation.accepted]]);
    metric('moe_verification_passes_total', 'counter', 'Verification passes of the exact split over drafted tokens.', [['', this.speculation.passes]]);
    const routings: [string, number][] = [];
    const tokens: [string, number][] = [];
    for (const [id, tally] of this.routing) {
      for (const [profile, c] of tally.byProfile()) {
        const p = `model="${label(id)}",profile="${label(profile ?? '')}"`;
        tokens.push([`{${p}}`, c.tokens]);
        c.counts.forEach((row, l) => row.forEach((v, e) => routings.push([`{${p},layer="${l}",expert="${e}"}`, v])));
      }
    }
    metric('moe_routed_tokens_total', 'counter', 'Tokens routed through every layer, by model and profile (profile="" without one).', tokens);
    metric('moe_expert_routings_total', 'counter', 'Router picks (token x top-k slot) per layer and expert, counted before the cold policy, by model and profile.', routings);
    const wasm: [string, number][] = [];
    const used: [string, number][] = [];
    for (const id of new Set([...modelIds, ...this.heaps.keys()])) {
      const heaps: HeapGauge[] = [];
      for (const ref of this.heaps.get(id) ?? []) {
        const h = ref.deref();
        if (h) heaps.push(h);
        else this.heaps.get(id)!.delete(ref); // collected
      }
      wasm.push([`{model="${label(id)}"}`, heaps.reduce((s, h) => s + h.memory.buffer.byteLength, 0)]);
      used.push([`{model="${label(id)}"}`, heaps.reduce((s, h) => s + h.usedBytes, 0)]);
    }
    metric('moe_wasm_memory_bytes', 'gauge', 'WebAssembly memory of the model\'s kernels (memory.buffer.byteLength), by model; 0 before it loads.', wasm);
    metric('moe_wasm_heap_used_bytes', 'gauge', 'Bytes the kernels\' allocator has handed out in that memory (weights, KV caches, scratch), by model.', used);
    return out.join('\n') + '\n';
  }
}

/** A Prometheus label value: backslash, quote and newline escaped. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The isolate's counters (module state lives as long as the isolate). */
export const metrics = new Metrics();

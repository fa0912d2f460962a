// Per-isolate counters exposed at GET /metrics in Prometheus text format: requests, tokens, where the
// routed experts ran (hot hits, cold calls, remote time, degraded generations by reason), and what the
// routers asked for (routings per model, layer, expert and profile: the statistics the hot set is planned from).
import type { GenerateResult, MoeUsage } from '../engine/api';
import { RoutingTally } from '../routing/tally';

export class Metrics {
  private readonly requests = new Map<string, number>(); // `${route}\t${status}` -> count
  private readonly degraded = new Map<string, number>(); // reason -> generations
  private promptTokens = 0;
  private completionTokens = 0;
  private generations = 0;
  private hotHits = 0;
  private coldCalls = 0;
  private remoteMs = 0;
  /** model id -> its routing statistics in this isolate (one tally per id, shared by every load of it) */
  private readonly routing = new Map<string, RoutingTally>();

  /** The routing statistics of the model served under `modelId` (created empty on first use). */
  routingTally(modelId: string): RoutingTally {
    let t = this.routing.get(modelId);
    if (!t) this.routing.set(modelId, (t = new RoutingTally()));
    return t;
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
    this.coldCalls += usage.cold_calls;
    this.remoteMs += usage.remote_ms;
    if (usage.degraded) this.degraded.set(usage.degraded, (this.degraded.get(usage.degraded) ?? 0) + 1);
  }

  render(): string {
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
    metric('moe_cold_calls_total', 'counter', 'Router picks of cold experts (remote, substituted or dropped).', [['', this.coldCalls]]);
    metric('moe_remote_ms_total', 'counter', 'Milliseconds of backend round trips.', [['', this.remoteMs]]);
    metric('moe_degraded_total', 'counter', 'Generations that stopped using the backend, by reason.', [...this.degraded].map(([r, v]) => [`{reason="${r}"}`, v]));
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
    return out.join('\n') + '\n';
  }
}

/** A Prometheus label value: backslash, quote and newline escaped. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The isolate's counters (module state lives as long as the isolate). */
export const metrics = new Metrics();

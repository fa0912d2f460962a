// Per-isolate counters exposed at GET /metrics in Prometheus text format: requests, tokens, and where the
// routed experts ran (hot hits, cold calls, remote time, degraded generations by reason).
import type { GenerateResult, MoeUsage } from '../engine/api';

export class Metrics {
  private readonly requests = new Map<string, number>(); // `${route}\t${status}` -> count
  private readonly degraded = new Map<string, number>(); // reason -> generations
  private promptTokens = 0;
  private completionTokens = 0;
  private generations = 0;
  private hotHits = 0;
  private coldCalls = 0;
  private remoteMs = 0;

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
    return out.join('\n') + '\n';
  }
}

/** The isolate's counters (module state lives as long as the isolate). */
export const metrics = new Metrics();

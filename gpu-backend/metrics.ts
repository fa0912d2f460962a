// Counters of the backend, rendered as Prometheus text for GET /metrics.

export class Metrics {
  calls = { http: 0, ws: 0 };
  pairs = 0;
  tokens = 0;
  batches = 0;
  batchedCalls = 0;
  computeSeconds = 0;
  wsOpen = 0;
  /** The prefill call: requests, prompt tokens prefilled, KV frame bytes sent, wall seconds of finished prefills. */
  readonly prefill = { calls: 0, tokens: 0, kvBytes: 0, seconds: 0 };
  readonly errors = new Map<string, number>(); // code -> count

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  render(g: { residentBytes: number; loadedExperts: number; device: string; model: string }): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: [string, number][]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
    };
    metric('moe_backend_calls_total', 'counter', 'Expert calls (request frames answered with a result or an error).',
      [['{transport="http"}', this.calls.http], ['{transport="ws"}', this.calls.ws]]);
    metric('moe_backend_pairs_total', 'counter', '(token, expert) pairs computed.', [['', this.pairs]]);
    metric('moe_backend_tokens_total', 'counter', 'Tokens received in successful calls.', [['', this.tokens]]);
    metric('moe_backend_batches_total', 'counter', 'Device batches (calls merged by layer and expert).', [['', this.batches]]);
    metric('moe_backend_batched_calls_total', 'counter', 'Calls that went through a device batch.', [['', this.batchedCalls]]);
    metric('moe_backend_errors_total', 'counter', 'Calls answered with an error, by code.',
      [...this.errors].sort().map(([code, n]) => [`{code="${code}"}`, n] as [string, number]));
    metric('moe_backend_compute_seconds_total', 'counter', 'Wall seconds spent in device batches.', [['', this.computeSeconds]]);
    metric('moe_backend_prefill_calls_total', 'counter', 'Prefill requests received.', [['', this.prefill.calls]]);
    metric('moe_backend_prefill_tokens_total', 'counter', 'Prompt tokens prefilled (finished prefills).', [['', this.prefill.tokens]]);
    metric('moe_backend_prefill_kv_bytes_total', 'counter', 'Bytes of KV frames sent.', [['', this.prefill.kvBytes]]);
    metric('moe_backend_prefill_seconds_total', 'counter', 'Wall seconds of finished prefills.', [['', this.prefill.seconds]]);
    metric('moe_backend_resident_bytes', 'gauge', 'Bytes of expert weights resident on the device.', [['', g.residentBytes]]);
    metric('moe_backend_experts_loaded', 'gauge', 'Experts this replica serves.', [['', g.loadedExperts]]);
    metric('moe_backend_ws_sessions', 'gauge', 'Open WebSocket sessions.', [['', this.wsOpen]]);
    metric('moe_backend_info', 'gauge', 'Model and device of this replica.', [[`{model="${esc(g.model)}",device="${esc(g.device)}"}`, 1]]);
    return lines.join('\n') + '\n';
  }
}

function esc(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

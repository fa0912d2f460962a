// The load test's results: their shape (bench/results/load.json) and the Markdown summary (load.md).
import type { MachineInfo } from '../matvec/machine';

export interface LoadResults {
  date: string;
  machine: MachineInfo;
  setup: { concurrency: number; durationS: number; warmupS: number; maxTokens: number; backendThreads: number; worker: string; model: string; vars: string[] };
  /** requests started in the measured window (all finished: clients stop starting new ones at its end) */
  requests: number;
  warmupRequests: number;
  errors: number;
  warmupErrors: number;
  errorReasons: Record<string, number>;
  elapsedS: number;
  requestsPerS: number;
  completionTokens: number;
  tokensPerS: number;
  ttftMs: { p50: number; p90: number; p99: number; max: number };
  requestMs: { p50: number; p99: number };
  backend: {
    rssStartMiB: number;
    rssBeforeMiB: number;
    rssPeakMiB: number;
    rssAfterMiB: number;
    growthMiB: number;
    boundMiB: number;
    withinBound: boolean;
    wsSessionsAfter: number;
    calls: number;
    errors: number;
  };
  worker: {
    workerdRssBeforeMiB: number;
    workerdRssAfterMiB: number;
    /** RSS of both processes every 10 s of the measured window */
    timeline: { s: number; backendMiB: number; workerdMiB: number }[];
    degradedGenerations: number;
    hotHits: number;
    coldCalls: number;
  };
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');

export function renderMarkdown(r: LoadResults): string {
  const m = r.machine;
  return `# Load test: ${r.setup.concurrency} concurrent streaming chats for ${r.setup.durationS} s

\`npm run bench:load\` (bench/load/run.ts), ${r.date}. ${r.setup.worker}; the real GPU backend (cpu device,
${r.setup.backendThreads} threads) for the cold experts; ${r.setup.model}; loopback only. Each client streams
\`/v1/chat/completions\` (max_tokens ${r.setup.maxTokens}, temperature 0.7, a fresh seed each) back to back; after a
${r.setup.warmupS} s warm-up the window below is measured, then clients stop starting requests and the last ones finish.

Machine: ${m.cpu} (${m.cores} cores), Node ${m.node}, wrangler ${m.wrangler}, workerd ${m.workerd}, load average at start ${m.loadavg.map((x) => x.toFixed(1)).join(' / ')}.

| | |
|---|---|
| requests under load | **${r.requests}** (+ ${r.warmupRequests} in the warm-up) |
| errors | **${r.errors}** (warm-up: ${r.warmupErrors}) |
| throughput | ${f(r.requestsPerS, 2)} requests/s, ${f(r.tokensPerS, 0)} completion tokens/s (${r.completionTokens} tokens in ${f(r.elapsedS)} s) |
| time to first token | p50 ${f(r.ttftMs.p50)} ms, p90 ${f(r.ttftMs.p90)} ms, p99 ${f(r.ttftMs.p99)} ms, max ${f(r.ttftMs.max)} ms |
| whole request | p50 ${f(r.requestMs.p50)} ms, p99 ${f(r.requestMs.p99)} ms |
| backend RSS | ${f(r.backend.rssStartMiB)} MiB at start, ${f(r.backend.rssBeforeMiB)} after the warm-up, peak ${f(r.backend.rssPeakMiB)}, ${f(r.backend.rssAfterMiB)} at the end |
| backend RSS growth (bound) | ${f(r.backend.growthMiB)} MiB (bound: at most +${r.backend.boundMiB} MiB over the post-warm-up RSS): ${r.backend.withinBound ? 'within' : '**over**'} |
| backend after the run | ${r.backend.wsSessionsAfter} WebSocket sessions open, ${r.backend.calls} expert calls, ${r.backend.errors} error frames |
| Worker (workerd RSS) | ${f(r.worker.workerdRssBeforeMiB)} MiB after the warm-up, ${f(r.worker.workerdRssAfterMiB)} MiB at the end |
| Worker /metrics | ${r.worker.degradedGenerations} degraded generations, ${r.worker.hotHits} hot hits, ${r.worker.coldCalls} cold calls |

RSS every 10 s (MiB), backend / workerd: ${r.worker.timeline.map((p) => `${p.s} s: ${f(p.backendMiB)} / ${f(p.workerdMiB)}`).join(', ')}.
${Object.keys(r.errorReasons).length ? `\nErrors by reason: ${Object.entries(r.errorReasons).map(([k, v]) => `${k} (${v})`).join('; ')}\n` : ''}
The workerd row is the whole process wrangler runs (its proxy Worker and runtime included), which grows with every
request whatever the Worker runs: a one-line Worker streaming 40 events grows it at least as much per request as
moe-edge's chat stream does (\`npx tsx bench/load/workerd-baseline.ts\`, results in load-workerd-baseline.md). What
moe-edge itself holds is its WASM heap: weights plus running generations, within ISOLATE_MEMORY_MB, and back to
the weights alone after every generation (test/worker/limits.test.ts, cancel.test.ts, disconnect.test.ts).

The bound on the backend's memory: after the warm-up has allocated what a steady state needs, ${r.setup.durationS} s of load
may not grow its resident set by more than ${r.backend.boundMiB} MiB; a leak per request or per session (${r.requests} requests,
as many sessions) would show as growth proportional to them.
`;
}

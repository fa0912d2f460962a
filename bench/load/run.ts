// Bounded load test on loopback: the Worker in local workerd (tools/dev/local-worker.ts: wrangler's unstable_startWorker
// without the inspector proxy, which leaks under load) over a seeded local R2, with the real
// GPU backend for the cold experts, as `npm start` runs them. N clients each stream chat completions back to
// back for a fixed time, then stop. Records throughput, time to first token (p50/p99), errors (must be 0),
// and the backend's resident memory (VmRSS) after a warm-up and at the end, against a stated bound.
//   npm run bench:load [-- --concurrency 16 --duration 60 --warmup 5 --max-tokens 48 --threads 2 --no-record]
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBackend } from '../../tools/dev/backend';
import { startLocalWorker } from '../../tools/dev/local-worker';
import { seedLocalR2 } from '../../tools/seed-local-r2';
import { machineInfo } from '../matvec/machine';
import { keepAliveAgent, quantile, streamChat, type StreamResult } from './client';
import { renderMarkdown, type LoadResults } from './report';

const { values: o } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '5' },
    'max-tokens': { type: 'string', default: '48' },
    threads: { type: 'string', default: '2' },
    'rss-bound-mib': { type: 'string', default: '64' },
    'no-record': { type: 'boolean', default: false },
    // more Worker vars, NAME=VALUE (e.g. --var HOT_EXPERTS=all); results with them are not recorded
    var: { type: 'string', multiple: true, default: [] },
  },
});
const extraVars = Object.fromEntries(o.var.map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]));
const N = Number(o.concurrency);
const DURATION_S = Number(o.duration);
const WARMUP_S = Number(o.warmup);
const MAX_TOKENS = Number(o['max-tokens']);
const RSS_BOUND_MIB = Number(o['rss-bound-mib']);
const REQUEST_TIMEOUT_MS = 60_000;
const log = (l: string) => process.stderr.write(`bench:load: ${l}\n`);

const PROMPTS = [
  'Tell me about experts.',
  'Write a short story about a lighthouse keeper.',
  'What is a mixture of experts model?',
  'List three things that make a good cup of tea.',
  'Explain what an edge server is, in two sentences.',
  'Once upon a time, in a small village by the sea,',
  'Give me a recipe for bread.',
  'Why is the sky blue?',
];

/** VmRSS and VmHWM of a process, in MiB (Linux /proc). */
function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

/** The workerd processes this one started (through wrangler), found by walking /proc's parent links. */
function workerdPids(): number[] {
  const parentOf = new Map<number, number>();
  const names = new Map<number, string>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      names.set(Number(d), stat.slice(stat.indexOf('(') + 1, close));
      parentOf.set(Number(d), Number(stat.slice(close + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const mine = (pid: number) => {
    for (let p = parentOf.get(pid); p !== undefined && p > 1; p = parentOf.get(p)) if (p === process.pid) return true;
    return false;
  };
  return [...names].filter(([pid, name]) => name.startsWith('workerd') && mine(pid)).map(([pid]) => pid);
}

async function metricsText(url: string, token?: string): Promise<string> {
  return (await fetch(`${url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {})).text();
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

function sumOf(text: string, prefix: string): number {
  return text.split('\n').filter((l) => l.startsWith(prefix)).reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);
}

const persistTo = await mkdtemp(join(tmpdir(), 'moe-load-'));
const TOKEN = `load-${Math.random().toString(36).slice(2)}`;
let stopBackend: (() => Promise<void>) | undefined;
let disposeWorker: (() => Promise<void>) | undefined;
try {
  await seedLocalR2({ persistTo, log });
  const backend = await startBackend({ token: TOKEN, args: ['--threads', o.threads] });
  stopBackend = () => backend.stop();
  log(`backend ${backend.url} (pid ${backend.pid}, cpu device, ${o.threads} threads)`);
  const worker = await startLocalWorker({ vars: { BACKEND_URL: backend.url, ...extraVars }, secrets: { BACKEND_TOKEN: TOKEN }, persistTo });
  disposeWorker = () => worker.dispose();
  const url = worker.url;
  const health = await fetch(`${url}/healthz`);
  if (health.status !== 200) throw new Error(`the Worker is not healthy: ${health.status} ${await health.text()}`);
  log(`worker ${url}; ${N} clients, ${WARMUP_S} s warm-up, ${DURATION_S} s measured, max_tokens ${MAX_TOKENS}`);

  const agent = keepAliveAgent(N);
  let seed = 1;
  const body = (i: number) => ({ model: 'default', messages: [{ role: 'user', content: PROMPTS[i % PROMPTS.length] }], max_tokens: MAX_TOKENS, temperature: 0.7, seed: seed++ });

  /** N clients, each sending requests back to back until `untilMs` (performance.now()); in-flight ones finish. */
  async function phase(untilMs: number): Promise<StreamResult[]> {
    const results: StreamResult[] = [];
    await Promise.all(
      Array.from({ length: N }, async (_, c) => {
        for (let i = c; performance.now() < untilMs; i += N) results.push(await streamChat(url, body(i), agent, REQUEST_TIMEOUT_MS));
      }),
    );
    return results;
  }

  const rssStart = memoryOf(backend.pid);
  const warm = await phase(performance.now() + WARMUP_S * 1000);
  const rssBefore = memoryOf(backend.pid);
  const workerdBefore = workerdPids().map(memoryOf).reduce((s, m) => s + m.rssMiB, 0);
  log(`warm-up: ${warm.length} requests (${warm.filter((r) => !r.ok).length} errors); backend RSS ${rssStart.rssMiB.toFixed(1)} -> ${rssBefore.rssMiB.toFixed(1)} MiB`);

  let rssPeak = rssBefore.rssMiB;
  const timeline: { s: number; backendMiB: number; workerdMiB: number }[] = [];
  const t0 = performance.now();
  const sampler = setInterval(() => {
    const b = memoryOf(backend.pid).rssMiB;
    rssPeak = Math.max(rssPeak, b);
    const s = Math.round((performance.now() - t0) / 1000);
    if (s % 10 === 0 && timeline.at(-1)?.s !== s) timeline.push({ s, backendMiB: b, workerdMiB: workerdPids().map(memoryOf).reduce((x, m) => x + m.rssMiB, 0) });
  }, 1000);
  const results = await phase(t0 + DURATION_S * 1000);
  const elapsedS = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  await new Promise((r) => setTimeout(r, 1000)); // sessions close, buffers drain
  const rssAfter = memoryOf(backend.pid);
  const workerdAfter = workerdPids().map(memoryOf).reduce((s, m) => s + m.rssMiB, 0);

  const backendMetrics = await metricsText(backend.url, TOKEN);
  const workerMetrics = await metricsText(url);
  const errors = results.filter((r) => !r.ok);
  const reasons = new Map<string, number>();
  for (const e of [...warm, ...results].filter((r) => !r.ok)) reasons.set(e.error!, (reasons.get(e.error!) ?? 0) + 1);
  const ttft = results.filter((r) => r.ok && r.ttftMs !== null).map((r) => r.ttftMs!);
  const tokens = results.reduce((s, r) => s + r.completionTokens, 0);
  const growth = rssAfter.rssMiB - rssBefore.rssMiB;
  const out: LoadResults = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    setup: {
      concurrency: N,
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      maxTokens: MAX_TOKENS,
      backendThreads: Number(o.threads),
      worker: 'wrangler unstable_startWorker (local workerd, inspector off), wrangler.toml as shipped (HOT_EXPERTS 50%, COLD_POLICY remote)',
      model: 'models/default',
      vars: o.var,
    },
    requests: results.length,
    warmupRequests: warm.length,
    errors: errors.length,
    warmupErrors: warm.filter((r) => !r.ok).length,
    errorReasons: Object.fromEntries(reasons),
    elapsedS,
    requestsPerS: results.length / elapsedS,
    completionTokens: tokens,
    tokensPerS: tokens / elapsedS,
    ttftMs: { p50: quantile(ttft, 0.5), p90: quantile(ttft, 0.9), p99: quantile(ttft, 0.99), max: Math.max(...ttft) },
    requestMs: { p50: quantile(results.map((r) => r.totalMs), 0.5), p99: quantile(results.map((r) => r.totalMs), 0.99) },
    backend: {
      rssStartMiB: rssStart.rssMiB,
      rssBeforeMiB: rssBefore.rssMiB,
      rssPeakMiB: rssPeak,
      rssAfterMiB: rssAfter.rssMiB,
      growthMiB: growth,
      boundMiB: RSS_BOUND_MIB,
      withinBound: growth <= RSS_BOUND_MIB,
      wsSessionsAfter: metric(backendMetrics, 'moe_backend_ws_sessions'),
      calls: metric(backendMetrics, 'moe_backend_calls_total{transport="ws"}'),
      errors: sumOf(backendMetrics, 'moe_backend_errors_total'),
    },
    worker: {
      workerdRssBeforeMiB: workerdBefore,
      workerdRssAfterMiB: workerdAfter,
      timeline,
      degradedGenerations: sumOf(workerMetrics, 'moe_degraded_total'),
      hotHits: metric(workerMetrics, 'moe_hot_hits_total'),
      coldCalls: metric(workerMetrics, 'moe_cold_calls_total'),
    },
  };
  log(
    `${out.requests} requests in ${elapsedS.toFixed(1)} s (${out.requestsPerS.toFixed(1)}/s, ${out.tokensPerS.toFixed(0)} tokens/s), ` +
      `TTFT p50 ${out.ttftMs.p50.toFixed(1)} ms p99 ${out.ttftMs.p99.toFixed(1)} ms, errors ${out.errors}; backend RSS ${rssBefore.rssMiB.toFixed(1)} -> ` +
      `${rssAfter.rssMiB.toFixed(1)} MiB (peak ${rssPeak.toFixed(1)}, bound +${RSS_BOUND_MIB}), sessions open after: ${out.backend.wsSessionsAfter}`,
  );
  log(`RSS every 10 s (MiB), backend / workerd: ${timeline.map((p) => `${p.s}s ${p.backendMiB.toFixed(0)}/${p.workerdMiB.toFixed(0)}`).join(', ')}`);
  if (!o['no-record'] && o.var.length === 0) {
    await writeFile('bench/results/load.json', JSON.stringify(out, null, 2) + '\n');
    await writeFile('bench/results/load.md', renderMarkdown(out));
    log('wrote bench/results/load.{json,md}');
  }
  const failed = out.errors > 0 || out.warmupErrors > 0 || !out.backend.withinBound || out.backend.wsSessionsAfter !== 0 || out.worker.degradedGenerations > 0;
  if (failed) {
    log(`FAILED: errors ${out.errors} (warm-up ${out.warmupErrors}) ${JSON.stringify(out.errorReasons)}, RSS growth ${growth.toFixed(1)} MiB (bound ${RSS_BOUND_MIB}), ` +
      `sessions open ${out.backend.wsSessionsAfter}, degraded ${out.worker.degradedGenerations}`);
    process.exitCode = 1;
  }
} finally {
  await disposeWorker?.().catch(() => {});
  await stopBackend?.().catch(() => {});
  await rm(persistTo, { recursive: true, force: true });
}

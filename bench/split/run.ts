// Split benchmark (Node: the Worker's engine and backend client, not workerd, whose clock does not move
// during compute): per-token decode latency against hot-set coverage (0/50/100 %) and injected round-trip
// delay (0/5/20 ms, through tools/dev/fault-proxy.ts in its own process), each run twice: as the Worker
// runs it (cold request sent first, hot experts computed while it is in flight) and serialized (wait for the
// reply, then compute the hot experts), to show latency near max(hot, round trip) rather than the sum.
// Then backend throughput (expert calls/s) at 1, 4 and 16 concurrent generations, all experts cold.
//   npm run bench:split [-- --tokens 24 --rounds 3 --threads 1 --quick --no-record]
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { MoeOptions } from '../../src/engine/api';
import { forward, Sequence } from '../../src/engine/forward';
import { argmax } from '../../src/engine/sampler';
import { fsSource } from '../../src/store/source-fs';
import { parseHotExperts } from '../../src/hotset/spec';
import { loadNodeKernels } from '../../src/kernels/load-node';
import { ServedModel } from '../../src/runtime/served-model';
import { startBackend } from '../../tools/dev/backend';
import { spawnFaultProxy } from '../../tools/dev/fault-proxy-process';
import { machineInfo } from '../matvec/machine';
import { benchModel, DEFAULT_DIMS, type BenchModelDims } from './model';
import { renderMarkdown, type LatencyRow, type SplitResults, type ThroughputRow } from './report';
import { TimingExperts, type LayerCall } from './timing';

const { values: o } = parseArgs({
  options: {
    tokens: { type: 'string', default: '24' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' },
    'tp-tokens': { type: 'string', default: '16' },
    quick: { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
  },
});
const TOKENS = Number(o.tokens);
const ROUNDS = Number(o.rounds);
const dims: BenchModelDims = o.quick ? { ...DEFAULT_DIMS, hidden: 1024, ffn: 2816 } : DEFAULT_DIMS;
const log = (l: string) => process.stderr.write(`bench:split: ${l}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN;
};
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

const machine = machineInfo();
const dir = await benchModel(dims, log);
const TOKEN = 'bench-split-token';
const backend = await startBackend({ token: TOKEN, model: dir, args: ['--threads', o.threads], timeoutMs: 600_000 });
log(`backend ${backend.url} (cpu device, ${o.threads} thread)`);
const proxy = await spawnFaultProxy(backend.url);
const proxyUrl = proxy.url;

const moeAt = (url: string): MoeOptions => ({ policy: 'remote', degradedPolicy: 'error', backend: { url, token: TOKEN, timeoutMs: 30_000 } });

interface TokenRecord {
  totalMs: number;
  calls: LayerCall[];
}

/** Prefill 8 tokens, then `n` greedy decode steps, each timed with its layer calls. */
async function decodeRun(model: ServedModel, moe: MoeOptions, serialize: boolean, n: number, first = 1): Promise<TokenRecord[]> {
  const g = model.beginExperts(moe, undefined, { serialize });
  const timing = new TimingExperts(g.experts, g.usage);
  const k = model.kernels;
  const prompt = Array.from({ length: 8 }, (_, i) => (first + i * 37) % model.manifest.architecture.vocabSize);
  const seq = new Sequence(k, g.weights, prompt.length + n + 1);
  try {
    let logits = (await forward(k, seq, timing, prompt, { logits: 'last' }))[0]!;
    timing.take();
    const out: TokenRecord[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      logits = (await forward(k, seq, timing, [argmax(logits)], { logits: 'last' }))[0]!;
      out.push({ totalMs: performance.now() - t0, calls: timing.take() });
      if (g.usage.degraded) throw new Error(`degraded: ${g.usage.degraded}`);
    }
    return out;
  } finally {
    seq.release();
    g.end();
  }
}

function latencyRow(coverage: number, delay: number, over: TokenRecord[], ser: TokenRecord[]): LatencyRow {
  // same prompt, exact policy: both runs decode the same tokens with the same routing, token by token
  const perToken = ser.map((s, i) => {
    const layers = s.calls.map((c, l) => ({ hot: over[i]!.calls[l]!.hotMs, remote: c.remoteMs }));
    const trunk = s.totalMs - sum(s.calls.map((c) => c.hotMs + c.remoteMs));
    return {
      hot: sum(layers.map((l) => l.hot)),
      remote: sum(layers.map((l) => l.remote)),
      trunk,
      max: trunk + sum(layers.map((l) => Math.max(l.hot, l.remote))),
      sum: trunk + sum(layers.map((l) => l.hot + l.remote)),
    };
  });
  const pick = (f: (x: (typeof perToken)[number]) => number) => median(perToken.map(f));
  return {
    coverage,
    delayMs: delay,
    overlappedMs: median(over.map((t) => t.totalMs)),
    serializedMs: median(ser.map((t) => t.totalMs)),
    hotMs: pick((x) => x.hot),
    remoteMs: pick((x) => x.remote),
    trunkMs: pick((x) => x.trunk),
    modelMaxMs: pick((x) => x.max),
    modelSumMs: pick((x) => x.sum),
    coldPerToken: median(over.map((t) => sum(t.calls.map((c) => c.cold)))),
    tokens: over.length,
  };
}

async function backendCounters(): Promise<Record<string, number>> {
  const text = await (await fetch(`${backend.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  const get = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { pairs: get('moe_backend_pairs_total'), batches: get('moe_backend_batches_total'), batched: get('moe_backend_batched_calls_total'), compute: get('moe_backend_compute_seconds_total') };
}

async function throughput(model: ServedModel, n: number, tokens: number): Promise<ThroughputRow> {
  const moe = moeAt(backend.url); // direct: no proxy hop
  const before = await backendCounters();
  const t0 = performance.now();
  const usages = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const g = model.beginExperts(moe);
      const k = model.kernels;
      const seq = new Sequence(k, g.weights, 4 + tokens);
      try {
        let logits = (await forward(k, seq, g.experts, [i + 3, i + 40, i + 77, i + 101], { logits: 'last' }))[0]!;
        for (let s = 1; s < tokens; s++) logits = (await forward(k, seq, g.experts, [argmax(logits)], { logits: 'last' }))[0]!;
        if (g.usage.degraded) throw new Error(`degraded: ${g.usage.degraded}`);
        return { ...g.usage };
      } finally {
        seq.release();
        g.end();
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const after = await backendCounters();
  const pairs = sum(usages.map((u) => u.cold_calls));
  const requests = n * tokens * model.manifest.architecture.numLayers;
  return {
    concurrency: n,
    seconds,
    pairs,
    pairsPerSec: pairs / seconds,
    requestsPerSec: requests / seconds,
    tokensPerSec: (n * (tokens + 3)) / seconds,
    callsPerBatch: (after.batched! - before.batched!) / (after.batches! - before.batches!),
    backendBusy: (after.compute! - before.compute!) / seconds,
  };
}

const latency: LatencyRow[] = [];
const tp: ThroughputRow[] = [];
try {
  for (const coverage of [0, 50, 100]) {
    const model = await ServedModel.load(fsSource(dir), await loadNodeKernels(), { hotExperts: parseHotExperts(`${coverage}%`), budgetBytes: null });
    await decodeRun(model, moeAt(`${proxyUrl}/pass`), false, 4); // warm up JIT, sockets, backend
    for (const delay of [0, 5, 20]) {
      const url = delay ? `${proxyUrl}/delay/${delay}` : `${proxyUrl}/pass`;
      const over: TokenRecord[] = [];
      const ser: TokenRecord[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        // alternate, so both modes see the same machine load; same prompt per round
        over.push(...(await decodeRun(model, moeAt(url), false, TOKENS, r + 1)));
        ser.push(...(await decodeRun(model, moeAt(url), true, TOKENS, r + 1)));
      }
      const row = latencyRow(coverage, delay, over, ser);
      latency.push(row);
      log(`coverage ${coverage}% delay ${delay} ms: ${row.overlappedMs.toFixed(2)} ms/token overlapped, ${row.serializedMs.toFixed(2)} serialized (hot ${row.hotMs.toFixed(2)}, remote ${row.remoteMs.toFixed(2)}, trunk ${row.trunkMs.toFixed(2)})`);
    }
    if (coverage === 0) {
      await throughput(model, 2, 4); // warm up
      for (const n of [1, 4, 16]) {
        const row = await throughput(model, n, Number(o['tp-tokens']));
        tp.push(row);
        log(`${n} concurrent generations: ${row.pairsPerSec.toFixed(0)} expert calls/s, ${row.callsPerBatch.toFixed(2)} calls per device batch`);
      }
    }
  }
} finally {
  proxy.stop();
  await backend.stop();
}

const results: SplitResults = {
  benchmark: 'split',
  date: new Date().toISOString(),
  runtime: `Node ${process.version} (the Worker's engine and backend client; backend: gpu-backend cpu device, ${o.threads} worker thread, same machine)`,
  machine,
  model: { ...dims, dir, expertMiB: (3 * dims.hidden * dims.ffn * 1.125) / 2 ** 20 },
  settings: { tokens: TOKENS, rounds: ROUNDS, throughputTokens: Number(o['tp-tokens']) },
  latency,
  throughput: tp,
};
const md = renderMarkdown(results);
if (o['no-record']) process.stdout.write(md);
else {
  await writeFile('bench/results/split.json', JSON.stringify(results, null, 2) + '\n');
  await writeFile('bench/results/split.md', md);
  log('wrote bench/results/split.json and bench/results/split.md');
}

// The split benchmark's record types and its Markdown table (bench/results/split.md).
import type { MachineInfo } from '../matvec/machine';
import type { BenchModelDims } from './model';

export interface LatencyRow {
  coverage: number; // % of each layer's experts hot
  delayMs: number; // injected on every reply
  overlappedMs: number; // median ms per decoded token, as the Worker runs (cold sent first, hot while in flight)
  serializedMs: number; // the same, waiting for the reply before the hot experts
  hotMs: number; // hot experts' compute per token
  remoteMs: number; // round trips (send -> reply, incl. backend compute) per token, from the serialized run
  trunkMs: number; // everything else: attention, norms, routers, logits, encode/decode of frames
  modelMaxMs: number; // trunk + sum over layers of max(hot, round trip)
  modelSumMs: number; // trunk + sum over layers of (hot + round trip)
  coldPerToken: number; // cold (token, expert) pairs per token
  tokens: number; // decoded tokens measured (all rounds)
}

export interface ThroughputRow {
  concurrency: number;
  seconds: number;
  pairs: number;
  pairsPerSec: number; // expert calls: (token, expert) pairs the backend computed
  requestsPerSec: number; // request frames (one per generation, layer and token)
  tokensPerSec: number; // all generations together
  callsPerBatch: number; // request frames merged per device batch by the backend
  backendBusy: number; // backend device-batch seconds / wall seconds (> 1: batches in flight at once)
}

export interface SplitResults {
  benchmark: 'split';
  date: string;
  runtime: string;
  machine: MachineInfo;
  model: BenchModelDims & { dir: string; expertMiB: number };
  settings: { tokens: number; rounds: number; throughputTokens: number };
  latency: LatencyRow[];
  throughput: ThroughputRow[];
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');

export function renderMarkdown(r: SplitResults): string {
  const m = r.model;
  const lines = [
    '# Split benchmark: hot experts here, cold experts on the backend',
    '',
    `${r.date} — ${r.runtime}.`,
    `Machine: ${r.machine.cpu} (${r.machine.cores} cores), load ${r.machine.loadavg.map((x) => x.toFixed(2)).join(' / ')} at start.`,
    `Model: synthetic Mixtral-style, hidden ${m.hidden}, expert FFN ${m.ffn} (${f(m.expertMiB, 1)} MiB q8_0 per expert), ${m.layers} layers x ${m.experts} experts, top-${m.topK}, random q8_0 weights.`,
    `Decode: ${r.settings.tokens} tokens x ${r.settings.rounds} rounds per cell after an 8-token prefill; medians per token. Replies pass a WebSocket proxy in its own process that holds each one for the injected delay.`,
    '',
    '## Per-token decode latency (ms) against hot-set coverage and injected round-trip delay',
    '',
    '`overlapped` is how the Worker runs (cold request sent first, hot experts computed while it is in flight);',
    '`serialized` waits for the reply before computing the hot experts. `max model` = trunk + sum over layers of',
    'max(hot, round trip); `sum model` = trunk + sum over layers of (hot + round trip), from per-layer timings of',
    'the same tokens. `hidden` = serialized - overlapped: the time the overlap saves.',
    '',
    '| coverage | delay | overlapped | max model | serialized | sum model | hidden | hot | round trips | trunk | cold pairs/token |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...r.latency.map((x) =>
      `| ${x.coverage}% | ${x.delayMs} | **${f(x.overlappedMs)}** | ${f(x.modelMaxMs)} | ${f(x.serializedMs)} | ${f(x.modelSumMs)} | ${f(x.serializedMs - x.overlappedMs)} | ${f(x.hotMs)} | ${f(x.remoteMs)} | ${f(x.trunkMs)} | ${f(x.coldPerToken, 1)} |`,
    ),
    '',
    '## Backend throughput: concurrent generations, every expert cold',
    '',
    `Each generation: 4-token prompt, ${r.settings.throughputTokens - 1} decode steps, its own WebSocket, straight to the backend. All generations run in one Node process (the client side is single-threaded too). Expert calls = (token, expert) pairs the backend computed; frames per device batch and device-batch seconds per wall second come from the backend's /metrics (up to --max-in-flight batches run at once).`,
    '',
    '| concurrent generations | expert calls/s | request frames/s | tokens/s (all) | frames per device batch | device-batch s per s |',
    '|---:|---:|---:|---:|---:|---:|',
    ...r.throughput.map((x) => `| ${x.concurrency} | ${f(x.pairsPerSec, 0)} | ${f(x.requestsPerSec, 0)} | ${f(x.tokensPerSec, 1)} | ${f(x.callsPerBatch)} | ${f(x.backendBusy)} |`),
    '',
  ];
  return lines.join('\n');
}

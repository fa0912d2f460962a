// The cost model's predictions of recorded benchmark runs, from inputs that are not the numbers predicted:
// bench:split's latency cells (edge speed from its all-hot cells, the backend's speed from the same file's
// throughput part, the injected delay as the round trip), its throughput rows (the backend as the bottleneck) and
// bench:load's run (default model, its measured hit rate, loopback round trip, one isolate shared by 16 chats).
import { decodeLatency, edgeTtft, type LatencyInputs } from '../../src/cost/latency';
import { callsPerBatch } from '../../src/cost/measured';
import { expertShare, type ModelShape } from '../../src/cost/model-shape';
import { callMs, distinctExperts, type BackendSpeed } from '../../src/cost/speed';

export interface Prediction {
  run: string;
  what: string;
  unit: string;
  predicted: number;
  measured: number;
  /** (predicted - measured) / measured */
  error: number;
  inputs: string;
}

const pred = (run: string, what: string, unit: string, predicted: number, measured: number, inputs: string): Prediction => ({ run, what, unit, predicted, measured, error: (predicted - measured) / measured, inputs });

export interface SplitRecord {
  date: string;
  model: { hidden: number; ffn: number; layers: number; experts: number; topK: number; expertMiB: number };
  latency: { coverage: number; delayMs: number; overlappedMs: number; hotMs: number; trunkMs: number; coldPerToken: number }[];
  throughput: { concurrency: number; pairsPerSec: number; tokensPerSec: number; callsPerBatch: number; backendBusy: number }[];
}

/** bench:split's synthetic model as the cost model sees it: its expert share of decode is taken from the all-hot
 *  cells (trunk vs hot ms), so the shape's step bytes are set in that ratio. */
function splitShape(r: SplitRecord, trunkMs: number, hotMs: number): ModelShape {
  const m = r.model;
  const expertBytes = m.expertMiB * 2 ** 20;
  const expertStepBytes = m.layers * m.topK * expertBytes;
  return {
    name: 'bench-split', layers: m.layers, experts: m.experts, topK: m.topK, expertBytes, allExpertBytes: m.layers * m.experts * expertBytes,
    fixedBytes: 0, trunkStepBytes: (expertStepBytes * trunkMs) / hotMs, expertStepBytes, storedBytes: 0, objects: 0,
    activeParams: 0, expertParams: 3 * m.hidden * m.ffn,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function predictSplit(r: SplitRecord, backendOverheadMs: number): Prediction[] {
  const anchors = r.latency.filter((c) => c.coverage === 100);
  const trunkMs = median(anchors.map((c) => c.trunkMs));
  const hotMs = median(anchors.map((c) => c.hotMs));
  const shape = splitShape(r, trunkMs, hotMs);
  const tp1 = r.throughput.find((t) => t.concurrency === 1)!;
  const gbps = ((tp1.pairsPerSec / tp1.backendBusy) * shape.expertBytes) / 1e9;
  const backend: BackendSpeed = { kind: 'measured', gbps, overheadMs: backendOverheadMs, label: 'cpu backend' };
  const inputs = `edge ${(trunkMs + hotMs).toFixed(2)} ms/token all hot (trunk ${trunkMs.toFixed(2)}) from the 100% cells; backend ${gbps.toFixed(1)} GB/s from the throughput row at 1 generation, call overhead ${backendOverheadMs.toFixed(2)} ms (backend.json)`;
  const out: Prediction[] = [];
  for (const c of r.latency.filter((x) => x.coverage !== 100)) {
    const h = c.coverage / 100;
    const li: LatencyInputs = {
      shape, edgeDecodeMs: trunkMs + hotMs, edgePrefillMs: 0, hitRate: h, shardShare: 0, shardOverheadMs: 0,
      rttMs: c.delayMs, coldExperts: Math.max(1, shape.experts * (1 - h)), backend, tokensPerPass: 1,
    };
    out.push(pred(`bench:split ${r.date.slice(0, 10)}`, `decode latency, ${c.coverage}% hot, ${c.delayMs} ms injected delay`, 'ms/token', decodeLatency(li).ms, c.overlappedMs, inputs));
  }
  // throughput, every expert cold: each generation waits on its own calls; the backend (one worker thread) serves
  // the calls of all of them, a merged batch computing each pair (the CPU backend's measured per-pair cost)
  for (const t of r.throughput) {
    const li: LatencyInputs = { shape, edgeDecodeMs: trunkMs + hotMs, edgePrefillMs: 0, hitRate: 0, shardShare: 0, shardOverheadMs: 0, rttMs: 0, coldExperts: shape.experts, backend, tokensPerPass: 1 };
    const single = 1000 / decodeLatency(li).ms;
    const B = callsPerBatch([{ concurrency: 1, callsPerBatch: 1 }, ...r.throughput.map((x) => ({ concurrency: x.concurrency, callsPerBatch: x.callsPerBatch }))], t.concurrency);
    const backendMsPerToken = (shape.layers * callMs(backend, shape, B * shape.topK, distinctExperts(B * shape.topK, shape.experts))) / B;
    const predicted = Math.min(t.concurrency * single, 1000 / backendMsPerToken);
    out.push(pred(`bench:split ${r.date.slice(0, 10)}`, `throughput, ${t.concurrency} generations, all cold`, 'tokens/s', predicted, t.tokensPerSec, `${inputs}; ${B.toFixed(2)} calls per device batch (measured in the row)`));
  }
  return out;
}

export interface LoadRecord {
  date: string;
  setup: { concurrency: number; backendThreads: number; maxTokens: number };
  requests: number;
  completionTokens: number;
  tokensPerS: number;
  ttftMs: { p50: number };
  worker: { hotHits: number; coldCalls: number };
}

/** bench:load: 16 streaming chats against one isolate (workerd runs it on one thread) and the CPU backend. */
export function predictLoad(r: LoadRecord, shape: ModelShape, edgeDecodeMs: number, edgePrefillMs: number, edgeSource: string, backend: BackendSpeed, promptTokens: number, rttMs: number): Prediction[] {
  const h = r.worker.hotHits / (r.worker.hotHits + r.worker.coldCalls);
  const li: LatencyInputs = { shape, edgeDecodeMs, edgePrefillMs, hitRate: h, shardShare: 0, shardOverheadMs: 0, rttMs, coldExperts: Math.max(1, shape.experts / 2), backend, tokensPerPass: 1 };
  const d = decodeLatency(li);
  const s = expertShare(shape);
  const isolateMsPerToken = edgeDecodeMs * (1 - s) + edgeDecodeMs * s * h;
  const tokensPerRequest = r.completionTokens / r.requests;
  const isolateMsPerRequest = promptTokens * edgePrefillMs * (1 - s + s * h) + tokensPerRequest * isolateMsPerToken;
  const backendMsPerToken = d.coldLayers > 0 ? (d.coldLayers * callMs(backend, shape, d.coldPairs / d.coldLayers, d.coldPairs / d.coldLayers)) : 0;
  const isolateCap = (1000 / isolateMsPerRequest) * tokensPerRequest;
  const backendCap = (r.setup.backendThreads * 1000) / backendMsPerToken;
  const streams = r.setup.concurrency * (1000 / d.ms);
  const tps = Math.min(streams, isolateCap, backendCap);
  const inputs = `edge ${edgeDecodeMs.toFixed(2)} ms/token, prefill ${edgePrefillMs.toFixed(2)} ms/token (${edgeSource}); hit rate ${(100 * h).toFixed(1)}% (the run's /metrics); ${tokensPerRequest.toFixed(1)} tokens/request, ${promptTokens}-token prompts; round trip ${rttMs} ms (loopback WebSocket, pitfalls.md); bound: ${tps === isolateCap ? 'the isolate' : tps === backendCap ? 'the backend' : 'the streams'}`;
  // a new request's first token: its prefill, then one turn of the isolate shared by the running streams
  const ttft = edgeTtft(li, promptTokens).ms + (r.setup.concurrency * 1000) / tps;
  return [
    pred(`bench:load ${r.date.slice(0, 10)}`, `throughput, ${r.setup.concurrency} streaming chats`, 'tokens/s', tps, r.tokensPerS, inputs),
    pred(`bench:load ${r.date.slice(0, 10)}`, `time to first token p50, ${r.setup.concurrency} chats`, 'ms', ttft, r.ttftMs.p50, inputs),
  ];
}

export interface TiersRecord {
  configs: { label: string; fraction: number; edge: number; front: number; shards: unknown[]; backend: number; decode: { decodeTokPerS: number }[] }[];
  shard: { from?: { date: string } };
  date: string;
}

/** bench:tiers' decode runs (granite-shaped, front holding no experts, shards holding `fraction`, the rest on the
 *  CPU backend over loopback): tok/s from the edge speed (shapes.json), the shard call (tiers' memory run) and the
 *  backend's speed as measured on bench:split's experts. */
export function predictTiers(r: TiersRecord, shape: ModelShape, edgeDecodeMs: number, edgeSource: string, backend: BackendSpeed, shardOverheadMs: number, rttMs: number, decodeDate: string): Prediction[] {
  return r.configs.map((c) => {
    const measured = median(c.decode.map((d) => d.decodeTokPerS));
    const li: LatencyInputs = {
      shape, edgeDecodeMs, edgePrefillMs: 0, hitRate: c.fraction, shardShare: c.fraction > 0 ? 1 : 0, shardOverheadMs, rttMs,
      coldExperts: Math.max(1, shape.experts * (1 - c.fraction)), backend, tokensPerPass: 1,
    };
    return pred(`bench:tiers ${decodeDate}`, `decode, ${c.label} of experts on ${c.shards.length} shards, the rest on the backend`, 'tokens/s', 1000 / decodeLatency(li).ms, measured,
      `edge ${edgeDecodeMs.toFixed(1)} ms/token (${edgeSource}); shard call overhead ${shardOverheadMs.toFixed(2)} ms (tiers.json's shard memory run); backend ${backend.gbps.toFixed(1)} GB/s (bench:split's experts), round trip ${rttMs} ms`);
  });
}

// Per-token decode latency (p50 estimate) and time to first token of a split deployment: the trunk at the edge,
// then per layer the slowest of what runs at once (the front's hot experts, a call to the expert shard holding a
// pick, the round trip to the GPU backend for the cold ones: the Worker sends the remote calls first and computes
// its hot experts while they are in flight, which bench/results/split.md measured), averaged over which picks
// are hot, on a shard or cold, each pick independently with the hit rates given.
import { callMs, distinctExperts, type BackendSpeed } from './speed';
import { expertShare, type ModelShape } from './model-shape';

export interface LatencyInputs {
  shape: ModelShape;
  /** ms per decode token with every expert local in one isolate (measured at the edge) */
  edgeDecodeMs: number;
  /** ms per prompt token of local prefill (measured at the edge) */
  edgePrefillMs: number;
  /** share of routings served at the edge (front + shards) */
  hitRate: number;
  /** share of the edge's hits that land on expert shards (0 without shards) */
  shardShare: number;
  /** fixed cost of one shard call beyond the experts it computes, ms */
  shardOverheadMs: number;
  /** network round trip edge <-> backend, ms */
  rttMs: number;
  /** cold experts a cold pick lands on (the routed experts not at the edge) */
  coldExperts: number;
  backend: BackendSpeed;
  /** tokens one verification pass yields (self-speculation; 1 = off) */
  tokensPerPass: number;
}

export interface DecodeLatency {
  ms: number;
  trunkMs: number;
  /** expected ms of the layers (max of the concurrent parts per layer, summed) */
  layersMs: number;
  /** layers per token with at least one cold pick (each one a round trip) */
  coldLayers: number;
  coldPairs: number;
  /** layers per token with a pick on a shard */
  shardLayers: number;
}

/** Every (front, shard, cold) split of k picks with its multinomial probability. */
function* splits(k: number, pf: number, ps: number, pc: number): Generator<[number, number, number, number]> {
  const fact = (n: number) => { let r = 1; for (let i = 2; i <= n; i++) r *= i; return r; };
  for (let nf = 0; nf <= k; nf++) {
    for (let ns = 0; ns <= k - nf; ns++) {
      const nc = k - nf - ns;
      const p = (fact(k) / (fact(nf) * fact(ns) * fact(nc))) * pf ** nf * ps ** ns * pc ** nc;
      if (p > 0) yield [nf, ns, nc, p];
    }
  }
}

export function decodeLatency(x: LatencyInputs): DecodeLatency {
  const { shape } = x;
  const L = shape.layers;
  const k = shape.topK;
  const s = expertShare(shape);
  const trunkMs = x.edgeDecodeMs * (1 - s);
  const perExpertMs = (x.edgeDecodeMs * s) / (L * k);
  const h = clamp01(x.hitRate);
  const pf = h * (1 - x.shardShare);
  const ps = h * x.shardShare;
  const pc = 1 - h;
  let layer = 0;
  let cold = 0;
  let shard = 0;
  for (const [nf, ns, nc, p] of splits(k, pf, ps, pc)) {
    const front = nf * perExpertMs;
    const toShard = ns > 0 ? x.shardOverheadMs + ns * perExpertMs : 0;
    const toBackend = nc > 0 ? x.rttMs + callMs(x.backend, shape, nc, distinctExperts(nc, x.coldExperts)) : 0;
    layer += p * Math.max(front, toShard, toBackend);
    if (nc > 0) cold += p;
    if (ns > 0) shard += p;
  }
  const layersMs = L * layer;
  const pass = Math.max(1, x.tokensPerPass);
  return { ms: (trunkMs + layersMs) / pass, trunkMs, layersMs, coldLayers: L * cold, coldPairs: L * k * pc, shardLayers: L * shard };
}

export interface TimeToFirstToken {
  ms: number;
  /** 'edge': prefill at the edge, cold experts' share on the backend; 'remote': prefill on the GPU tier */
  where: 'edge' | 'remote';
}

/** Local prefill of `promptTokens`: the trunk and the hot experts at the edge at the measured prefill speed, one
 *  backend call per layer for the prompt's cold pairs (merged by expert), overlapped as in decode. */
export function edgeTtft(x: LatencyInputs, promptTokens: number): TimeToFirstToken {
  const { shape } = x;
  const s = expertShare(shape);
  const L = shape.layers;
  const h = clamp01(x.hitRate);
  const trunk = promptTokens * x.edgePrefillMs * (1 - s);
  const hotPerLayer = (promptTokens * x.edgePrefillMs * s * h) / L;
  const coldPairs = promptTokens * shape.topK * (1 - h);
  const remote = coldPairs > 0 ? x.rttMs + callMs(x.backend, shape, coldPairs, distinctExperts(coldPairs, x.coldExperts)) : 0;
  return { ms: trunk + L * Math.max(hotPerLayer, remote), where: 'edge' };
}

/** Prefill on the GPU tier at its measured speed (issue 15): one round trip, the prompt at that speed. */
export function remoteTtft(rttMs: number, promptTokens: number, tokensPerSecond: number): TimeToFirstToken {
  return { ms: rttMs + (promptTokens / tokensPerSecond) * 1000, where: 'remote' };
}

export function clamp01(v: number): number {
  return Math.min(1, Math.max(0, v));
}

// The cost and latency of one deployment of a model: split (front + expert shards at the edge, cold experts on
// the GPU backend), edge-only (every expert at the edge, on shards), the whole model on the GPU, Workers AI. Costs
// per 1M output and per 1M input tokens, split by what is billed: Workers requests and CPU-ms (front, shards), R2
// storage and reads, GPU seconds (warm or scaled to zero) and Workers AI tokens.
import { callsPerBatch } from './measured';
import { clamp01, decodeLatency, edgeTtft, remoteTtft, type DecodeLatency, type LatencyInputs, type TimeToFirstToken } from './latency';
import { expertShare, type ModelShape } from './model-shape';
import { gpuBill, type GpuBill, type GpuMode } from './gpu-bill';
import type { GpuPrice, Prices, WorkersAiModel } from './prices';
import { callMs, distinctExperts, type BackendSpeed } from './speed';

export interface CostContext {
  shape: ModelShape;
  prices: Prices;
  gpu: GpuPrice;
  gpuMode: GpuMode;
  /** the backend's speed for the cold experts (measured device or the GPU's roofline) */
  backend: BackendSpeed;
  /** the named GPU's roofline, for "the whole model on that GPU" */
  gpuRoofline: BackendSpeed;
  batching: readonly { concurrency: number; callsPerBatch: number }[];
  edgeDecodeMs: number;
  edgePrefillMs: number;
  /** measured prefill on the backend device, tok/s (issue 15), or null: then prefill runs at the edge */
  remotePrefillTps: number | null;
  rttMs: number;
  /** output tokens per day, and the request shape */
  tokensPerDay: number;
  promptTokens: number;
  outputTokens: number;
  tokensPerPass: number;
  /** expert bytes the front isolate holds beside its trunk; one shard's room */
  frontRoomBytes: number;
  shardRoomBytes: number;
  shardOverheadMs: number;
  /** isolate loads a day (each reads the trunk and its experts from R2) */
  loadsPerDay: number;
}

export interface Breakdown {
  workersRequests: number;
  workersCpu: number;
  shards: number;
  r2Storage: number;
  r2Reads: number;
  gpu: number;
  workersAi: number;
  total: number;
}

export interface Estimate {
  label: string;
  kind: 'split' | 'edge-only' | 'whole-gpu' | 'workers-ai';
  coverage: number;
  hitRate: number;
  shards: number;
  /** per output token, ms (null: not estimated, e.g. Workers AI) */
  decodeMs: number | null;
  decode?: DecodeLatency;
  ttft: TimeToFirstToken | null;
  perMOutput: Breakdown;
  perMInput: Breakdown;
  gpuBill: GpuBill | null;
  /** generations decoding at once at this traffic, and the device batch the backend reaches */
  concurrency: number;
  callsPerBatch: number;
}

const DAY = 86_400;
const zero = (): Breakdown => ({ workersRequests: 0, workersCpu: 0, shards: 0, r2Storage: 0, r2Reads: 0, gpu: 0, workersAi: 0, total: 0 });
const total = (b: Breakdown): Breakdown => ({ ...b, total: b.workersRequests + b.workersCpu + b.shards + b.r2Storage + b.r2Reads + b.gpu + b.workersAi });

/** Expert shards needed to hold `coverage` of the routed expert bytes beside the front's room. */
export function shardsFor(ctx: Pick<CostContext, 'shape' | 'frontRoomBytes' | 'shardRoomBytes'>, coverage: number): number {
  const edgeBytes = coverage * ctx.shape.allExpertBytes;
  return Math.max(0, Math.ceil((edgeBytes - ctx.frontRoomBytes) / ctx.shardRoomBytes - 1e-9));
}

export function latencyInputs(ctx: CostContext, coverage: number, hitRate: number): LatencyInputs {
  const edgeBytes = coverage * ctx.shape.allExpertBytes;
  // hits fall on shards in proportion to the bytes they hold (the front keeps the first room's worth)
  const shardShare = edgeBytes > 0 ? Math.max(0, edgeBytes - ctx.frontRoomBytes) / edgeBytes : 0;
  return {
    shape: ctx.shape,
    edgeDecodeMs: ctx.edgeDecodeMs,
    edgePrefillMs: ctx.edgePrefillMs,
    hitRate,
    shardShare,
    shardOverheadMs: ctx.shardOverheadMs,
    rttMs: ctx.rttMs,
    coldExperts: Math.max(1, ctx.shape.experts * (1 - coverage)),
    backend: ctx.backend,
    tokensPerPass: ctx.tokensPerPass,
  };
}

/** Split (or, at coverage 1, edge-only) deployment at `coverage` of the expert bytes with `hitRate` of routings. */
export function estimateSplit(ctx: CostContext, coverage: number, hitRate: number, label: string): Estimate {
  const { shape, prices } = ctx;
  const h = clamp01(hitRate);
  const li = latencyInputs(ctx, coverage, h);
  const decode = decodeLatency(li);
  const ttft = ctx.remotePrefillTps && h < 1 ? remoteTtft(ctx.rttMs, ctx.promptTokens, ctx.remotePrefillTps) : edgeTtft(li, ctx.promptTokens);
  const s = expertShare(shape);
  const requestsPerDay = ctx.tokensPerDay / ctx.outputTokens;
  const inputPerDay = requestsPerDay * ctx.promptTokens;
  const mOut = ctx.tokensPerDay / 1e6;
  const mIn = inputPerDay / 1e6;
  const cpuMs = prices.workers.cpuMsPerMillion / 1e6;

  // Workers: one billed request per generation; CPU-ms of the trunk and the front's hot experts; shards' CPU-ms for theirs
  const frontDecodeMs = ctx.edgeDecodeMs * (1 - s) + ctx.edgeDecodeMs * s * h * (1 - li.shardShare);
  const shardDecodeMs = ctx.edgeDecodeMs * s * h * li.shardShare;
  const remotePrefill = ttft.where === 'remote';
  const frontPrefillMs = remotePrefill ? 0 : ctx.edgePrefillMs * ((1 - s) + s * h * (1 - li.shardShare));
  const shardPrefillMs = remotePrefill ? 0 : ctx.edgePrefillMs * s * h * li.shardShare;

  // R2: the model stored once; each isolate load reads the trunk and its experts
  const shards = shardsFor(ctx, coverage);
  const storagePerDay = (shape.storedBytes / 1e9) * prices.r2.storagePerGbMonth / 30;
  const frontObjects = 1 + Math.min(coverage * shape.allExpertBytes, ctx.frontRoomBytes) / shape.expertBytes;
  const readsPerLoad = frontObjects + Math.max(0, coverage * shape.allExpertBytes - ctx.frontRoomBytes) / shape.expertBytes;
  const readsPerDay = (ctx.loadsPerDay * readsPerLoad * prices.r2.classBPerMillion) / 1e6;

  // GPU: cold pairs of decode, merged into device batches at the concurrency this traffic reaches
  const concurrency = (ctx.tokensPerDay / DAY) * (decode.ms / 1000);
  const B = callsPerBatch(ctx.batching, concurrency);
  let decodeGpuS = 0;
  if (decode.coldLayers > 0) {
    const pairsPerCall = decode.coldPairs / decode.coldLayers;
    const batchMs = callMs(ctx.backend, shape, B * pairsPerCall, distinctExperts(B * pairsPerCall, li.coldExperts));
    decodeGpuS = (decode.coldLayers * batchMs) / B / 1000;
  }
  let prefillGpuS = 0; // per request
  if (h < 1) {
    if (remotePrefill) prefillGpuS = ctx.promptTokens / ctx.remotePrefillTps!;
    else {
      const pairs = ctx.promptTokens * shape.topK * (1 - h);
      prefillGpuS = (shape.layers * callMs(ctx.backend, shape, pairs, distinctExperts(pairs, li.coldExperts))) / 1000;
    }
  }
  const busy = decodeGpuS * ctx.tokensPerDay + prefillGpuS * requestsPerDay;
  const bill = h < 1 ? gpuBill(ctx.gpu, ctx.gpuMode, busy, requestsPerDay, (ttft.ms + ctx.outputTokens * decode.ms) / 1000, prices.scaleToZeroIdleS) : null;
  // the bill splits between input and output tokens as the busy seconds do (all to output when nothing is busy)
  const prefillShare = busy > 0 ? (prefillGpuS * requestsPerDay) / busy : 0;

  const out = zero();
  out.workersRequests = (prices.workers.requestsPerMillion / ctx.outputTokens); // per 1M output tokens: 1e6/outputTokens requests
  out.workersCpu = frontDecodeMs * 1e6 * cpuMs;
  out.shards = shardDecodeMs * 1e6 * cpuMs;
  out.r2Storage = mOut > 0 ? storagePerDay / mOut : 0;
  out.r2Reads = mOut > 0 ? readsPerDay / mOut : 0;
  out.gpu = bill && mOut > 0 ? (bill.dollarsPerDay * (1 - prefillShare)) / mOut : 0;
  const inp = zero();
  inp.workersCpu = frontPrefillMs * 1e6 * cpuMs;
  inp.shards = shardPrefillMs * 1e6 * cpuMs;
  inp.gpu = bill && mIn > 0 ? (bill.dollarsPerDay * prefillShare) / mIn : 0;
  return {
    label,
    kind: coverage >= 1 && h >= 1 ? 'edge-only' : 'split',
    coverage,
    hitRate: h,
    shards,
    decodeMs: decode.ms,
    decode,
    ttft,
    perMOutput: total(out),
    perMInput: total(inp),
    gpuBill: bill,
    concurrency,
    callsPerBatch: B,
  };
}

/** The whole model on the named GPU (trunk and every expert, the batch = generations decoding at once, found as
 *  the fixed point of Little's law), from the GPU's published bandwidth and FLOPs plus one call overhead per layer
 *  and step: no moe-edge backend has been measured on a GPU. */
export function estimateWholeGpu(ctx: CostContext): Estimate {
  const { shape } = ctx;
  const g = ctx.gpuRoofline;
  const stepMs = (c: number) => {
    const n = Math.max(1, c);
    const bytes = shape.trunkStepBytes + shape.layers * distinctExperts(n * shape.topK, shape.experts) * shape.expertBytes;
    const mem = bytes / (g.gbps * 1e6);
    const flop = g.tflops ? (n * 2 * shape.activeParams) / (g.tflops * 1e9) : 0;
    return g.overheadMs * shape.layers + Math.max(mem, flop);
  };
  const rate = ctx.tokensPerDay / DAY;
  let c = rate * (stepMs(1) / 1000);
  for (let i = 0; i < 30; i++) c = rate * (stepMs(c) / 1000);
  const perToken = stepMs(c);
  const gpuSPerToken = perToken / Math.max(1, c) / 1000;
  const promptBytes = shape.trunkStepBytes + shape.layers * distinctExperts(ctx.promptTokens * shape.topK, shape.experts) * shape.expertBytes;
  const prefillMs = Math.max(promptBytes / (g.gbps * 1e6), g.tflops ? (ctx.promptTokens * 2 * shape.activeParams) / (g.tflops * 1e9) : 0);
  const requestsPerDay = ctx.tokensPerDay / ctx.outputTokens;
  const busy = gpuSPerToken * ctx.tokensPerDay + (prefillMs / 1000) * requestsPerDay;
  const ttft: TimeToFirstToken = { ms: ctx.rttMs + prefillMs, where: 'remote' };
  const bill = gpuBill(ctx.gpu, ctx.gpuMode, busy, requestsPerDay, (ttft.ms + ctx.outputTokens * perToken) / 1000, ctx.prices.scaleToZeroIdleS);
  const prefillShare = busy > 0 ? ((prefillMs / 1000) * requestsPerDay) / busy : 0;
  const mOut = ctx.tokensPerDay / 1e6;
  const mIn = (requestsPerDay * ctx.promptTokens) / 1e6;
  const out = zero();
  out.gpu = mOut > 0 ? (bill.dollarsPerDay * (1 - prefillShare)) / mOut : 0;
  const inp = zero();
  inp.gpu = mIn > 0 ? (bill.dollarsPerDay * prefillShare) / mIn : 0;
  return { label: `whole model on one ${ctx.gpu.name}`, kind: 'whole-gpu', coverage: 0, hitRate: 0, shards: 0, decodeMs: perToken, ttft, perMOutput: total(out), perMInput: total(inp), gpuBill: bill, concurrency: c, callsPerBatch: Math.max(1, c) };
}

/** Workers AI at its published per-token prices (latency not estimated: not measured). */
export function estimateWorkersAi(m: WorkersAiModel): Estimate {
  const out = zero();
  out.workersAi = m.outputPerMillion;
  const inp = zero();
  inp.workersAi = m.inputPerMillion;
  return { label: `Workers AI ${m.id}`, kind: 'workers-ai', coverage: 0, hitRate: 0, shards: 0, decodeMs: null, ttft: null, perMOutput: total(out), perMInput: total(inp), gpuBill: null, concurrency: 0, callsPerBatch: 0 };
}

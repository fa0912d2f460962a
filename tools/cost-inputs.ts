// Gathers the cost model's inputs from files: the model's manifest, the measured figures in bench/results/*.json,
// the prices in docs/prices.json, and the hot set (a hot-set.json, or routing statistics planned within a budget,
// or a bare coverage). Everything it cannot find is refused with CostInputError (the CLI exits 2).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest, type Manifest } from '../src/format/manifest';
import { CostInputError } from '../src/cost/errors';
import { backendFigures, edgeFigures, prefillFigures, shardFigures, type BackendFigures, type Cited, type EdgeFigures } from '../src/cost/measured';
import { expertShare, modelShape, type ModelShape } from '../src/cost/model-shape';
import { gpuNamed, parsePrices, type GpuPrice, type Prices } from '../src/cost/prices';
import type { BackendSpeed } from '../src/cost/speed';
import type { CostContext } from '../src/cost/estimate';
import type { GpuMode } from '../src/cost/gpu-bill';
import { planHotSet } from '../src/planning/planner';
import { edgeSizes, totalExpertBytes } from '../src/planning/sizes';
import { shardExpertRoom } from '../src/planning/shard-memory';
import { parseRoutingStats } from '../src/routing/stats';
import { checkStatsFor, MIB } from './plan-hot-set';

export interface CostOptions {
  model: string;
  hotSet?: string;
  stats?: string;
  budgetMb?: number;
  coverage?: number;
  /** measured hit rate at that coverage (e.g. bench/results/hotset.md); default: the coverage itself */
  hitRate?: number;
  gpu: string;
  gpuMode: GpuMode;
  backendDevice?: string;
  rttMs: number;
  tokensPerDay: number;
  promptTokens: number;
  outputTokens: number;
  tokensPerPass: number;
  loadsPerDay: number;
  results: string;
  prices: string;
}

export interface CostSetup {
  ctx: CostContext;
  manifest: Manifest;
  shape: ModelShape;
  prices: Prices;
  gpu: GpuPrice;
  edge: EdgeFigures;
  backend: BackendFigures;
  /** the deployment asked for: coverage of expert bytes at the edge, hit rate, and where the hit rate came from */
  coverage: number;
  hitRate: number;
  hitRateFrom: string;
  /** hit rate at any coverage (the planner on the statistics, or the coverage itself) */
  hitRateAt: (coverage: number) => number;
  sources: string[];
  notes: string[];
}

const ISOLATE_MB = 96; // wrangler.toml's ISOLATE_MEMORY_MB
const SHARD_BUDGET_MB = 100; // `plan --shards`' default --shard-budget-mb

function readJson(path: string, what: string): unknown {
  if (!existsSync(path)) throw new CostInputError(`${what}: ${path} not found`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CostInputError(`${what}: ${path} is not JSON (${(e as Error).message})`);
  }
}

const cited = <T,>(c: Cited<T>) => c.source;

export function costSetup(o: CostOptions): CostSetup {
  const manifest = parseManifest(readJson(join(o.model, 'manifest.json'), 'the model'));
  const shape = modelShape(manifest);
  const prices = parsePrices(readJson(o.prices, 'prices'));
  const gpu = gpuNamed(prices, o.gpu);
  const edge = edgeFigures(readJson(join(o.results, 'shapes.json'), 'edge figures (npm run bench:shapes)'), manifest.name);
  const measuredDevice = o.backendDevice ?? 'cpu';
  const backend = backendFigures(readJson(join(o.results, 'backend.json'), 'backend figures (npm run bench:backend)'), readJson(join(o.results, 'split.json'), 'backend throughput (npm run bench:split)'), measuredDevice);
  const shardsMeasured = shardFigures(readJson(join(o.results, 'tiers.json'), 'expert-shard figures (npm run bench:tiers)'));
  const notes: string[] = [];
  const sources = [cited(edge.decodeTps), cited(edge.prefillTps), cited(backend.callOverheadMs), cited(backend.batching), cited(shardsMeasured.callMs)];

  const roofline: BackendSpeed = {
    kind: 'roofline',
    gbps: gpu.bandwidthGBps,
    tflops: gpu.fp16TensorTflops,
    overheadMs: backend.callOverheadMs.value,
    label: `${gpu.name} roofline: published ${gpu.bandwidthGBps} GB/s, ${gpu.fp16TensorTflops} FP16 TFLOPS (not measured), call overhead as measured on the ${backend.device} backend`,
  };
  const measured: BackendSpeed = {
    kind: 'measured',
    gbps: backend.expertGBps.value,
    overheadMs: backend.callOverheadMs.value,
    label: `${backend.device} backend as measured (${backend.expertGBps.value.toFixed(1)} GB/s of expert weights)${backend.cpuStandIn ? `: a CPU stand-in for the ${gpu.name}, priced at its rate` : ''}`,
  };
  const coldBackend = o.backendDevice ? measured : roofline;
  if (o.backendDevice) sources.push(cited(backend.expertGBps));
  notes.push(`cold experts: ${coldBackend.label}`);
  notes.push(`whole model on the ${gpu.name}: its roofline, one call overhead per layer per step standing in for kernel launches; no batching limit but the traffic`);

  // remote prefill (issue 15) when measured on the backend device, else local prefill figures
  let remotePrefillTps: number | null = null;
  const prefillPath = join(o.results, 'prefill.json');
  if (existsSync(prefillPath)) {
    const p = prefillFigures(readJson(prefillPath, 'remote prefill'), manifest.name, o.backendDevice ?? gpu.name.toLowerCase(), o.promptTokens);
    if (p) {
      remotePrefillTps = p.tokensPerSecond.value;
      sources.push(cited(p.tokensPerSecond));
      if (p.kvBytesPerToken) notes.push(`remote prefill sends ${((p.kvBytesPerToken * o.promptTokens) / MIB).toFixed(1)} MiB of KV cache to the edge per request (transfer time not included)`);
    } else notes.push(`bench/results/prefill.json has no row for ${manifest.name} on ${o.backendDevice ?? gpu.name}: prefill on the GPU is unmeasured there; TTFT uses local (edge) prefill figures`);
  } else notes.push('prefill on the GPU is unmeasured (no bench/results/prefill.json): TTFT uses local (edge) prefill figures, cold experts of the prompt on the backend');

  // the shard call's fixed cost: measured call minus the compute of its top-k experts at the edge's speed (of the model it was measured on)
  let shardOverheadMs = shardsMeasured.callMs.value;
  const ref = shardsMeasured.model === manifest.name ? { e: edge, s: shape } : refEdge(o, shardsMeasured.model);
  if (ref) shardOverheadMs = Math.max(0, shardsMeasured.callMs.value - ((1000 / ref.e.decodeTps.value) * expertShare(ref.s)) / ref.s.layers);
  else notes.push(`shard call overhead: the whole measured call (${shardsMeasured.callMs.value.toFixed(2)} ms on ${shardsMeasured.model}, whose folder is not here), its compute not subtracted`);

  const a = manifest.architecture;
  const frontRoomBytes = Math.max(0, shardExpertRoom(a, ISOLATE_MB * MIB) - shape.fixedBytes);
  const shardRoomBytes = shardExpertRoom(a, SHARD_BUDGET_MB * MIB);
  if (shardRoomBytes < shape.expertBytes) throw new CostInputError(`one expert (${(shape.expertBytes / MIB).toFixed(1)} MiB) does not fit a ${SHARD_BUDGET_MB} MiB shard isolate`);

  const sizes = edgeSizes(manifest);
  const all = totalExpertBytes(sizes);
  let coverage: number;
  let hitRate: number;
  let hitRateFrom: string;
  let hitRateAt = (c: number) => c;
  if (o.hotSet) {
    const doc = readJson(o.hotSet, 'the hot set') as { model?: string; bytes?: number; layers?: Record<string, number[]>; plan?: { expected?: { overall?: number } } };
    if (doc.model !== manifest.name) throw new CostInputError(`the hot set is of model "${doc.model}", the manifest is "${manifest.name}"`);
    const bytes = typeof doc.bytes === 'number' ? doc.bytes : Object.entries(doc.layers ?? {}).reduce((s, [l, es]) => s + es.reduce((t, e) => t + (sizes.expertBytes[Number(l)]?.[e] ?? 0), 0), 0);
    coverage = bytes / all;
    const expected = doc.plan?.expected?.overall;
    hitRate = typeof expected === 'number' ? expected : coverage;
    hitRateFrom = typeof expected === 'number' ? `${o.hotSet}: the planner's expected hit rate` : `${o.hotSet} has no expected hit rate: taken as its share of the experts (no statistics)`;
  } else if (o.stats) {
    if (o.budgetMb === undefined) throw new CostInputError('--stats needs --budget-mb <n> (the isolate budget the hot set is planned within)');
    const stats = parseRoutingStats(readJson(o.stats, 'routing statistics'));
    checkStatsFor(manifest, stats);
    const plan = planHotSet(stats.overall, sizes, { budgetBytes: Math.floor(o.budgetMb * MIB) });
    coverage = plan.expertBytes / all;
    hitRate = plan.expected.overall;
    hitRateFrom = `${o.stats} planned within ${o.budgetMb} MiB: the planner's expected hit rate`;
    hitRateAt = (c) => (c <= 0 ? 0 : c >= 1 ? 1 : planHotSet(stats.overall, sizes, { budgetBytes: Math.floor(sizes.fixedBytes + c * all) }).expected.overall);
  } else {
    coverage = o.coverage ?? 0.5;
    hitRate = o.hitRate ?? coverage;
    hitRateFrom = o.hitRate !== undefined ? `--hit-rate ${(100 * o.hitRate).toFixed(1)}% as given (the coverage sweep takes hit rate = coverage)` : 'no hot set or statistics: hit rate = share of the experts at the edge (a blind choice; planned hot sets do better: bench/results/hotset.md)';
  }

  const ctx: CostContext = {
    shape,
    prices,
    gpu,
    gpuMode: o.gpuMode,
    backend: coldBackend,
    gpuRoofline: roofline,
    batching: backend.batching.value,
    edgeDecodeMs: 1000 / edge.decodeTps.value,
    edgePrefillMs: 1000 / edge.prefillTps.value,
    remotePrefillTps,
    rttMs: o.rttMs,
    tokensPerDay: o.tokensPerDay,
    promptTokens: o.promptTokens,
    outputTokens: o.outputTokens,
    tokensPerPass: o.tokensPerPass,
    frontRoomBytes,
    shardRoomBytes,
    shardOverheadMs,
    loadsPerDay: o.loadsPerDay,
  };
  notes.push('edge speed measured on one AMD EPYC thread in local workerd: a deployed isolate\'s CPU may differ');
  notes.push(`isolate loads/day ${o.loadsPerDay} (assumed, not measured); included Workers/R2 allotments and the $5 plan left out (marginal prices)`);
  return { ctx, manifest, shape, prices, gpu, edge, backend, coverage, hitRate, hitRateFrom, hitRateAt, sources, notes };
}

/** Edge figures and shape of the model the shard call was measured on, when its folder is here (granite-shaped
 *  lives in .cache/models, made by `npm run make:granite`); null otherwise. */
function refEdge(o: CostOptions, name: string): { e: EdgeFigures; s: ModelShape } | null {
  const dir = [join('.cache/models', name), join('models', name)].find((d) => existsSync(join(d, 'manifest.json')));
  if (!dir) return null;
  const m = parseManifest(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));
  return { e: edgeFigures(readJson(join(o.results, 'shapes.json'), 'edge figures'), name), s: modelShape(m) };
}

// The cost model's arithmetic on a hand-computed case (latency per token, $ per 1M tokens split by what is
// billed, the GPU bill warm and scaled to zero, batching and distinct experts), and its refusals: inputs it
// does not have (no measured figures for a model or device, no price for a GPU) fail with a message naming
// what is missing, and the CLI exits 2 on them.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CostInputError } from '../../../src/cost/errors';
import { estimateSplit, type CostContext } from '../../../src/cost/estimate';
import { gpuBill } from '../../../src/cost/gpu-bill';
import { decodeLatency, type LatencyInputs } from '../../../src/cost/latency';
import { backendFigures, callsPerBatch, edgeFigures, prefillFigures } from '../../../src/cost/measured';
import type { ModelShape } from '../../../src/cost/model-shape';
import { gpuNamed, parsePrices, type GpuPrice, type Prices } from '../../../src/cost/prices';
import { distinctExperts, type BackendSpeed } from '../../../src/cost/speed';
import { readFileSync } from 'node:fs';
import { costCommand } from '../../../tools/cost';

// 2 layers, top-2 of 4 experts, 1 MB experts; trunk bytes = expert bytes per step, so experts take half of decode
const shape: ModelShape = {
  name: 'hand', layers: 2, experts: 4, topK: 2, expertBytes: 1e6, allExpertBytes: 8e6, fixedBytes: 4e6,
  trunkStepBytes: 4e6, expertStepBytes: 4e6, storedBytes: 1e9, objects: 9, activeParams: 0, expertParams: 0,
};
// a measured backend: 1 GB/s of expert weights = 1 ms per pair, 0.5 ms per call
const backend: BackendSpeed = { kind: 'measured', gbps: 1, overheadMs: 0.5, label: 'hand' };
const inputs: LatencyInputs = {
  shape, edgeDecodeMs: 4, edgePrefillMs: 1, hitRate: 0.5, shardShare: 0, shardOverheadMs: 0, rttMs: 10,
  coldExperts: 2, backend, tokensPerPass: 1,
};

describe('decode latency', () => {
  it('is the trunk plus, per layer, the slowest of hot compute and the round trip, averaged over which picks are hot', () => {
    // trunk 2 ms; one expert 4 x 0.5 / (2 layers x 2 picks) = 0.5 ms. Per layer, picks hot with p = 0.5 each:
    //   both hot (1/4): 1.0 ms; one cold (1/2): max(0.5, 10 + 0.5 + 1) = 11.5; both cold (1/4): 10 + 0.5 + 2 = 12.5
    //   = 0.25 + 5.75 + 3.125 = 9.125 ms per layer, 18.25 for two; + trunk = 20.25 ms
    const d = decodeLatency(inputs);
    expect(d.trunkMs).toBeCloseTo(2, 10);
    expect(d.layersMs).toBeCloseTo(18.25, 10);
    expect(d.ms).toBeCloseTo(20.25, 10);
    expect(d.coldLayers).toBeCloseTo(1.5, 10); // 2 layers x (1 - 0.5^2)
    expect(d.coldPairs).toBeCloseTo(2, 10); // 2 layers x 2 picks x 0.5
  });

  it('divides by the tokens a verification pass yields, and needs no round trip when everything is hot', () => {
    expect(decodeLatency({ ...inputs, tokensPerPass: 2 }).ms).toBeCloseTo(20.25 / 2, 10);
    const hot = decodeLatency({ ...inputs, hitRate: 1 });
    expect(hot.ms).toBeCloseTo(4, 10);
    expect(hot.coldLayers).toBe(0);
  });

  it('charges a shard call where a pick lands on a shard', () => {
    // every pick on a shard: per layer 3 ms overhead + 2 x 0.5 ms compute = 4 ms; 2 layers + trunk 2 = 10 ms
    expect(decodeLatency({ ...inputs, hitRate: 1, shardShare: 1, shardOverheadMs: 3 }).ms).toBeCloseTo(10, 10);
  });
});

const gpu: GpuPrice = {
  name: 'G', memoryGb: 24, bandwidthGBps: 100, fp16TensorTflops: 100, specSource: 'hand', provider: 'hand',
  warmPerSecond: 0.0001, scaleToZeroPerSecond: 0.0002, source: 'https://example.com/', read: '2026-12-04', verified: true,
};
const prices = parsePrices({
  currency: 'USD',
  workers: { requestsPerMillion: 0.3, cpuMsPerMillion: 0.02, source: 'https://example.com/w', read: '2026-12-04', verified: true },
  r2: { storagePerGbMonth: 0.015, classAPerMillion: 4.5, classBPerMillion: 0.36, source: 'https://example.com/r', read: '2026-12-04', verified: true },
  workersAi: { source: 'https://example.com/a', read: '2026-12-04', verified: true, models: [] },
  gpus: [gpu],
  scaleToZeroIdleS: 5,
}) as Prices;

const ctx: CostContext = {
  shape, prices, gpu, gpuMode: 'warm', backend, gpuRoofline: backend, batching: [{ concurrency: 1, callsPerBatch: 1 }],
  edgeDecodeMs: 4, edgePrefillMs: 1, remotePrefillTps: null, rttMs: 10, tokensPerDay: 1e6, promptTokens: 10, outputTokens: 100,
  tokensPerPass: 1, frontRoomBytes: 1e9, shardRoomBytes: 1e9, shardOverheadMs: 0, loadsPerDay: 0,
};

describe('cost per 1M tokens', () => {
  it('splits a split deployment into requests, CPU-ms, R2 and a warm GPU, by hand', () => {
    const e = estimateSplit(ctx, 0.5, 0.5, 'hand');
    // requests: 1e6 / 100 tokens = 1e4 requests x $0.30/1e6 = $0.003
    expect(e.perMOutput.workersRequests).toBeCloseTo(0.003, 12);
    // CPU: trunk 2 ms + hot experts 4 x 0.5 x 0.5 = 1 ms -> 3e6 ms x $0.02/1e6 = $0.06
    expect(e.perMOutput.workersCpu).toBeCloseTo(0.06, 12);
    // R2: 1 GB x $0.015 a month / 30 days, over 1M tokens a day
    expect(e.perMOutput.r2Storage).toBeCloseTo(0.0005, 12);
    expect(e.perMOutput.r2Reads).toBe(0);
    // GPU, warm: $0.0001 x 86,400 = $8.64 a day, shared by busy time. Decode: 1.5 cold layers x (0.5 + 4/3 pairs x 1 ms)
    // = 2.75 ms a token, 2,750 s a day; prefill: 2 layers x (0.5 + 10 pairs x 1 ms) = 21 ms a request, 210 s a day
    expect(e.gpuBill!.busySecondsPerDay).toBeCloseTo(2960, 6);
    expect(e.gpuBill!.dollarsPerDay).toBeCloseTo(8.64, 10);
    expect(e.perMOutput.gpu).toBeCloseTo((8.64 * 2750) / 2960, 8);
    // input: 1e4 requests x 10 tokens = 0.1M input tokens a day; prefill CPU 1 ms x (0.5 + 0.5 x 0.5) = 0.75 ms a token
    expect(e.perMInput.gpu).toBeCloseTo((8.64 * 210) / 2960 / 0.1, 8);
    expect(e.perMInput.workersCpu).toBeCloseTo(0.75 * 0.02, 12);
    expect(e.perMOutput.total).toBeCloseTo(0.003 + 0.06 + 0.0005 + (8.64 * 2750) / 2960, 8);
  });

  it('has no GPU at all when every expert is at the edge', () => {
    const e = estimateSplit(ctx, 1, 1, 'edge');
    expect(e.gpuBill).toBeNull();
    expect(e.perMOutput.gpu).toBe(0);
    expect(e.perMOutput.workersCpu).toBeCloseTo(4 * 0.02, 12); // the whole 4 ms token at the edge
  });

  it('bills a scaled-to-zero GPU while requests keep it up, never below its busy time', () => {
    // one request a second, each holding the worker 1 s + 1 s idle: up 1 - e^-2 of the day
    const b = gpuBill(gpu, 'scale-to-zero', 100, 86_400, 1, 1);
    expect(b.billedSecondsPerDay).toBeCloseTo(86_400 * (1 - Math.exp(-2)), 6);
    expect(b.dollarsPerDay).toBeCloseTo(86_400 * (1 - Math.exp(-2)) * 0.0002, 8);
    expect(gpuBill(gpu, 'scale-to-zero', 50_000, 1, 1, 0).billedSecondsPerDay).toBe(50_000);
    expect(gpuBill(gpu, 'warm', 100_000, 1, 1, 0).gpus).toBe(2); // more than a day's busy time: two GPUs
  });

  it('interpolates the measured batching in log(concurrency) and counts distinct experts', () => {
    const curve = [{ concurrency: 1, callsPerBatch: 1 }, { concurrency: 4, callsPerBatch: 2 }, { concurrency: 16, callsPerBatch: 11 }];
    expect(callsPerBatch(curve, 0.2)).toBe(1);
    expect(callsPerBatch(curve, 2)).toBeCloseTo(1.5, 10); // halfway in log between 1 and 4
    expect(callsPerBatch(curve, 8)).toBeCloseTo(6.5, 10);
    expect(callsPerBatch(curve, 32)).toBeCloseTo(22, 10);
    expect(distinctExperts(2, 8)).toBeCloseTo(8 * (1 - (7 / 8) ** 2), 12);
  });
});

const shapesJson = { date: '2026-12-04T00:00:00Z', cases: [{ model: 'm', kv: 'q8_0', engine: 'moe-edge (workerd)', case: 'decode', prompt_tokens: 128, tps: 50 }, { model: 'm', kv: 'q8_0', engine: 'moe-edge (workerd)', case: 'prefill', prompt_tokens: 128, tps: 80 }] };
const backendJson = { when: '2026-11-23T00:00:00Z', device: 'cpu', rows: [{ scenario: 'decode (1 token x top-k)', concurrency: 1, p50ms: 0.1, callsPerBatch: 1 }] };
const splitJson = { date: '2026-11-23T00:00:00Z', model: { expertMiB: 1 }, throughput: [{ concurrency: 1, pairsPerSec: 100, backendBusy: 0.5 }] };

describe('refusals', () => {
  it('reads measured figures with their source', () => {
    const e = edgeFigures(shapesJson, 'm');
    expect(e.decodeTps.value).toBe(50);
    expect(e.decodeTps.source).toContain('bench/results/shapes.json');
    const b = backendFigures(backendJson, splitJson, 'cpu');
    expect(b.expertGBps.value).toBeCloseTo((200 * 2 ** 20) / 1e9, 12);
    expect(b.cpuStandIn).toBe(true);
  });

  it('refuses a model without measured edge figures, naming what was measured', () => {
    expect(() => edgeFigures(shapesJson, 'other')).toThrow(CostInputError);
    expect(() => edgeFigures(shapesJson, 'other')).toThrow(/no measured edge figures for model "other".*measured: m.*bench:shapes/);
  });

  it('refuses a backend device that was never measured', () => {
    expect(() => backendFigures(backendJson, splitJson, 'webgpu')).toThrow(/no measured backend figures for device "webgpu".*recorded on device "cpu"/);
  });

  it('refuses a GPU without a price, listing the priced ones', () => {
    expect(() => gpuNamed(prices, 'X9')).toThrow(/no price for GPU "X9".*priced: G/);
    expect(gpuNamed(prices, 'g').name).toBe('G');
  });

  it('refuses a prices file without its sources', () => {
    const bad = JSON.parse(readFileSync('docs/prices.json', 'utf8'));
    delete bad.gpus[0].source;
    expect(() => parsePrices(bad)).toThrow(/gpus\.0\.source/);
    expect(() => parsePrices(JSON.parse(readFileSync('docs/prices.json', 'utf8')))).not.toThrow();
  });

  it('takes remote prefill only where it was measured for that model and device', () => {
    const p = { rows: [{ model: 'm', device: 'webgpu', concurrency: 1, promptTokens: 128, tokensPerSecond: 900 }, { model: 'm', device: 'webgpu', concurrency: 1, promptTokens: 1024, tokensPerSecond: 700 }], kvBytesPerToken: { m: { q8_0: 1000 } } };
    expect(prefillFigures(p, 'm', 'webgpu', 900)?.tokensPerSecond.value).toBe(700);
    expect(prefillFigures(p, 'm', 'webgpu', 900)?.kvBytesPerToken).toBe(1000);
    expect(prefillFigures(p, 'm', 'cpu', 900)).toBeNull();
  });
});

describe('the cost command', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = 0;
  });

  const run = async (args: string[]) => {
    let err = '';
    let out = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
    await costCommand(args);
    const code = process.exitCode;
    vi.restoreAllMocks();
    return { code, err, out };
  };

  it('exits 2 with a clear message on a GPU it has no price for, a device never measured, a missing option', async () => {
    const gpuless = await run(['--model', 'models/default', '--gpu', 'X100']);
    expect(gpuless.code).toBe(2);
    expect(gpuless.err).toMatch(/no price for GPU "X100"/);
    const device = await run(['--model', 'models/default', '--backend-device', 'webgpu']);
    expect(device.code).toBe(2);
    expect(device.err).toMatch(/no measured backend figures for device "webgpu"/);
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/--model/);
    const bad = await run(['--model', 'models/default', '--rtt-ms', 'fast']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--rtt-ms/);
  });

  it('answers for the default model from the recorded figures, citing them', async () => {
    const r = await run(['--model', 'models/default', '--coverage', '50', '--json']);
    expect(r.code ?? 0).toBe(0);
    const a = JSON.parse(r.out);
    expect(a.deployment.decodeMs).toBeGreaterThan(0);
    expect(a.alternatives.map((e: { kind: string }) => e.kind)).toEqual(['edge-only', 'whole-gpu']);
    expect(a.sources.join('\n')).toMatch(/bench\/results\/shapes\.json[\s\S]*developers\.cloudflare\.com\/workers\/platform\/pricing/);
  });
});

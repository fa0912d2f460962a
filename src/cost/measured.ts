// The measured inputs of the cost model, read out of moe-edge's own benchmark records (bench/results/*.json):
// edge decode/prefill speed per model, the backend's speed and batching per device, expert-shard calls, remote
// prefill (issue 15's prefill.json, when recorded). Each figure carries the file and run it came from; a figure
// that was never measured is refused (CostInputError), never guessed.
import { z } from 'zod';
import { CostInputError } from './errors';

export interface Cited<T> {
  value: T;
  /** file, run date and the row it was read from */
  source: string;
}

export interface EdgeFigures {
  model: string;
  /** decode tok/s with every expert local, one isolate (moe-edge in workerd) */
  decodeTps: Cited<number>;
  /** prefill tok/s of a 128-token prompt, same engine */
  prefillTps: Cited<number>;
}

export interface BackendFigures {
  device: string;
  /** bytes of expert weights the device computes per busy second (GB/s) */
  expertGBps: Cited<number>;
  /** fixed cost of one expert call (protocol, dispatch), ms */
  callOverheadMs: Cited<number>;
  /** calls merged per device batch against concurrent generations (the backend's batcher) */
  batching: Cited<{ concurrency: number; callsPerBatch: number }[]>;
  /** true when these are the CPU device's numbers standing in for a GPU */
  cpuStandIn: boolean;
}

export interface ShardFigures {
  /** one expert-shard call (1 token x top-k) over its channel, ms, the shard's compute included */
  callMs: Cited<number>;
  /** experts' bytes one shard isolate holds (the planned room) */
  roomBytes: Cited<number>;
  /** the model it was measured on (the compute inside callMs is that model's) */
  model: string;
}

export interface PrefillFigures {
  tokensPerSecond: Cited<number>;
  kvBytesPerToken: number | null;
}

const ShapesSchema = z.object({
  date: z.string(),
  cases: z.array(z.object({ model: z.string(), kv: z.string(), engine: z.string(), case: z.string(), prompt_tokens: z.number(), tps: z.number() })),
});

/** Edge speed of `model` from bench/results/shapes.json: moe-edge in workerd, 128-token prompt, the Worker's
 *  default KV cache type (q8_0) where measured, else f32. */
export function edgeFigures(shapesJson: unknown, model: string): EdgeFigures {
  const s = ShapesSchema.parse(shapesJson);
  const rows = s.cases.filter((c) => c.model === model && c.engine === 'moe-edge (workerd)' && c.prompt_tokens === 128);
  const pick = (kind: string) => rows.find((r) => r.case === kind && r.kv === 'q8_0') ?? rows.find((r) => r.case === kind && r.kv === 'f32');
  const dec = pick('decode');
  const pre = pick('prefill');
  if (!dec || !pre) {
    const have = [...new Set(s.cases.map((c) => c.model))].join(', ');
    throw new CostInputError(`no measured edge figures for model "${model}" in bench/results/shapes.json (measured: ${have}); run npm run bench:shapes -- --model <its folder>`);
  }
  const src = (r: typeof dec) => `bench/results/shapes.json ${s.date.slice(0, 10)}: moe-edge (workerd), ${r.case} ${r.case === 'decode' ? '128 @ 128' : '128'}, KV ${r.kv}`;
  return { model, decodeTps: { value: dec.tps, source: src(dec) }, prefillTps: { value: pre.tps, source: src(pre) } };
}

const BackendSchema = z.object({
  when: z.string(),
  device: z.string(),
  rows: z.array(z.object({ scenario: z.string(), concurrency: z.number(), p50ms: z.number(), callsPerBatch: z.number() })),
});
const SplitSchema = z.object({
  date: z.string(),
  model: z.object({ expertMiB: z.number() }),
  throughput: z.array(z.object({ concurrency: z.number(), pairsPerSec: z.number(), backendBusy: z.number() })),
});

/** The backend's measured speed on `device` (bench:backend's per-call overhead and batching, bench:split's expert
 *  throughput at one generation). Refused when that device was never measured. */
export function backendFigures(backendJson: unknown, splitJson: unknown, device: string): BackendFigures {
  const b = BackendSchema.parse(backendJson);
  const s = SplitSchema.parse(splitJson);
  if (b.device !== device) throw new CostInputError(`no measured backend figures for device "${device}": bench/results/backend.json and split.json were recorded on device "${b.device}"; run npm run bench:backend -- --device ${device} (and bench:split) on it`);
  const decode = b.rows.filter((r) => r.scenario.startsWith('decode')).sort((x, y) => x.concurrency - y.concurrency);
  const one = decode.find((r) => r.concurrency === 1);
  const tp1 = s.throughput.find((r) => r.concurrency === 1);
  if (!one || !tp1 || !(tp1.backendBusy > 0)) throw new CostInputError('bench/results/backend.json or split.json lacks its one-generation row');
  const expertBytes = s.model.expertMiB * 2 ** 20;
  const gbps = (tp1.pairsPerSec / tp1.backendBusy) * expertBytes / 1e9;
  return {
    device,
    expertGBps: { value: gbps, source: `bench/results/split.json ${s.date.slice(0, 10)}: ${tp1.pairsPerSec.toFixed(0)} expert pairs/s at 1 generation, backend busy ${tp1.backendBusy.toFixed(2)}, ${s.model.expertMiB} MiB per expert` },
    callOverheadMs: { value: one.p50ms, source: `bench/results/backend.json ${b.when.slice(0, 10)}: p50 of one decode call at 1 generation (tiny experts: the call's fixed cost)` },
    batching: { value: decode.map((r) => ({ concurrency: r.concurrency, callsPerBatch: r.callsPerBatch })), source: `bench/results/backend.json ${b.when.slice(0, 10)}: calls per device batch at ${decode.map((r) => r.concurrency).join('/')} generations` },
    cpuStandIn: device === 'cpu',
  };
}

/** Calls per device batch at `concurrency` generations: the measured curve, linear in log(concurrency) between
 *  points, flat beyond its ends (never below 1). */
export function callsPerBatch(curve: readonly { concurrency: number; callsPerBatch: number }[], concurrency: number): number {
  if (!curve.length || concurrency <= curve[0].concurrency) return Math.max(1, curve[0]?.callsPerBatch ?? 1);
  for (let i = 1; i < curve.length; i++) {
    const a = curve[i - 1];
    const b = curve[i];
    if (concurrency <= b.concurrency) {
      const t = Math.log(concurrency / a.concurrency) / Math.log(b.concurrency / a.concurrency);
      return Math.max(1, a.callsPerBatch + t * (b.callsPerBatch - a.callsPerBatch));
    }
  }
  // beyond the last point: batches grow with concurrency at the last measured ratio
  const last = curve[curve.length - 1];
  return Math.max(1, last.callsPerBatch * (concurrency / last.concurrency));
}

const TiersSchema = z.object({
  model: z.object({ name: z.string() }),
  shard: z.object({ roomBytes: z.number(), from: z.object({ date: z.string() }).optional(), memory: z.object({ calls: z.object({ decodeMsEach: z.number() }) }) }),
  date: z.string(),
});

export function shardFigures(tiersJson: unknown): ShardFigures {
  const t = TiersSchema.parse(tiersJson);
  const date = (t.shard.from?.date ?? t.date).slice(0, 10);
  return {
    model: t.model.name,
    callMs: { value: t.shard.memory.calls.decodeMsEach, source: `bench/results/tiers.json ${date}: one shard call, 1 token x top-k, ${t.model.name}` },
    roomBytes: { value: t.shard.roomBytes, source: `bench/results/tiers.json ${date}: the planned room of one shard isolate` },
  };
}

const PrefillSchema = z.object({
  date: z.string().optional(),
  rows: z.array(z.object({ model: z.string(), device: z.string(), threads: z.number().optional(), concurrency: z.number(), promptTokens: z.number(), tokensPerSecond: z.number() })),
  kvBytesPerToken: z.record(z.string(), z.record(z.string(), z.number())).optional(),
});

/** Remote prefill speed of `model` on `device` at one generation, the row nearest `promptTokens` (issue 15's
 *  bench/results/prefill.json); null when the file has no such row. */
export function prefillFigures(prefillJson: unknown, model: string, device: string, promptTokens: number, kvType = 'q8_0'): PrefillFigures | null {
  const p = PrefillSchema.parse(prefillJson);
  const rows = p.rows.filter((r) => r.model === model && r.device === device && r.concurrency === 1);
  if (!rows.length) return null;
  const r = rows.reduce((best, x) => (Math.abs(x.promptTokens - promptTokens) < Math.abs(best.promptTokens - promptTokens) ? x : best));
  return {
    tokensPerSecond: { value: r.tokensPerSecond, source: `bench/results/prefill.json${p.date ? ' ' + p.date.slice(0, 10) : ''}: ${model} on ${device}, ${r.promptTokens}-token prompt, 1 generation` },
    kvBytesPerToken: p.kvBytesPerToken?.[model]?.[kvType] ?? null,
  };
}

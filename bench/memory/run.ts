// Memory of the front Worker's isolate, measured in local workerd (issue 13), beside what the planner predicts.
// Seeds a model folder into a local R2, starts the Worker with its inspector (HOT_EXPERTS none, no backend) and
// samples the isolate (tools/dev/isolate-memory.ts: inspector heap usage + /metrics WASM gauge + workerd RSS)
// every ~50 ms during the model load, one generation of 2,048 positions (prompt + output) and two concurrent ones
// of 1,024. A generation that admission refuses is recorded with its message, then the longest one admitted runs.
// With --head-on-shard the front runs beside one expert-shard Worker holding the embedding and output head
// (shard-layout.json's `head`; docs/shards.md), one isolate each through `wrangler dev`, and the front is measured.
//   npm run bench:memory -- --model <folder> [--var KV_CACHE_TYPE=q8_0 ...] [--positions 2048] [--every-ms 50] [--no-record] [--note text] [--head-on-shard]
import { execSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCodec } from '../../src/engine/load';
import { parseManifest } from '../../src/format/manifest';
import { fsSource } from '../../src/store/source-fs';
import { IsolateMemory, probeOf } from '../../tools/dev/isolate-memory';
import { startLocalWorker, type LocalWorker } from '../../tools/dev/local-worker';
import { startLocalWorkers } from '../../tools/dev/local-workers';
import { closedPort } from '../../tools/dev/free-port';
import { SHARD_LAYOUT_OBJECT, shardLayoutDocument, shardNames } from '../../src/shard/layout';
import { seedLocalR2 } from '../../tools/seed-local-r2';
import { DEFAULT_KV_CACHE_TYPE, KV_CACHE_TYPES, type KvCacheType } from '../../src/engine/kv-cache';
import { promptOf } from '../prompt-of';
import { predict, summarize, type Phase } from './phases';
import { recordRun, type MemoryRun } from './report';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/default' },
    positions: { type: 'string', default: '2048' },
    'every-ms': { type: 'string', default: '50' },
    'persist-to': { type: 'string' },
    'no-record': { type: 'boolean', default: false },
    // what changed since the last run of this command, recorded beside its figures
    note: { type: 'string' },
    // Worker vars over the defaults below, NAME=VALUE (e.g. --var KV_CACHE_TYPE=q8_0 --var ISOLATE_MEMORY_MB=120)
    var: { type: 'string', multiple: true, default: [] },
    'head-on-shard': { type: 'boolean', default: false },
  },
});
const log = (l: string) => process.stderr.write(`bench:memory: ${l}\n`);
const dir = resolve(o.model);
const modelId = basename(dir);
const EVERY_MS = Number(o['every-ms']);
const manifest = parseManifest(JSON.parse(await readFile(`${dir}/manifest.json`, 'utf8')));
const arch = manifest.architecture;
const single = Math.min(Number(o.positions), arch.contextLength);
const half = Math.min(Math.floor(Number(o.positions) / 2), arch.contextLength);
const vars: Record<string, string> = {
  MODEL_ID: modelId,
  HOT_EXPERTS: 'none',
  ISOLATE_MEMORY_MB: '96',
  ...Object.fromEntries(o.var.map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)])),
};
// the cache type the Worker will use (its var, else the default), for the planner's figures
const kvType = (vars.KV_CACHE_TYPE ?? DEFAULT_KV_CACHE_TYPE) as KvCacheType;
if (!KV_CACHE_TYPES.includes(kvType)) throw new Error(`--var KV_CACHE_TYPE=${kvType}: one of ${KV_CACHE_TYPES.join(', ')}`);
const codec = await loadCodec(fsSource(dir), manifest);

// the words this bench's recorded runs were prompted with
const MEMORY_WORDS = 'the edge holds a small model and the experts answer in turn while the cache grows'.split(' ');

interface Outcome {
  positions: number;
  status: number;
  promptTokens?: number;
  completionTokens?: number;
  ms: number;
  error?: { code: string | null; message: string };
}

/**
 * One generation of `positions` (half prompt, half output), streamed: between tokens the stream waits for the
 * client's read, and the isolate answers the sampler's inspector and /metrics requests meanwhile.
 */
async function generate(url: string, positions: number): Promise<Outcome> {
  const p = promptOf((t) => codec.encode(t), Math.max(1, Math.floor(positions / 2)), MEMORY_WORDS);
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: modelId, prompt: p.text, max_tokens: positions - p.tokens, temperature: 0.8, seed: 7, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) {
    const body = (await res.json()) as any;
    return { positions, status: res.status, ms: performance.now() - t0, error: { code: body.error?.code ?? null, message: body.error?.message ?? JSON.stringify(body) } };
  }
  const events = (await res.text()).split('\n\n').filter((f) => f.startsWith('data: {')).map((f) => JSON.parse(f.slice('data: '.length)));
  const usage = events.at(-1)?.usage;
  if (!usage) throw new Error(`the stream of a ${positions}-position generation ended without usage: ${JSON.stringify(events.at(-1))}`);
  return { positions, status: 200, promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, ms: performance.now() - t0 };
}

/** Samples the isolate while `work` runs. */
async function sampled<T>(mem: IsolateMemory, work: () => Promise<T>): Promise<{ result: T; samples: Awaited<ReturnType<ReturnType<IsolateMemory['every']>['stop']>> }> {
  const s = mem.every(EVERY_MS);
  try {
    const result = await work();
    return { result, samples: await s.stop() };
  } catch (e) {
    await s.stop();
    throw e;
  }
}

/** "at most N tokens fit" from admission's 400. */
const fitsFrom = (o: Outcome) => Number(/at most (\d+) tokens fit/.exec(o.error?.message ?? '')?.[1] ?? NaN);

const persistTo = resolve(o['persist-to'] ?? `.wrangler/bench-memory/${modelId}`);
log(`seeding ${dir} into ${persistTo}`);
const headOnShard = o['head-on-shard'];
const headShard = { ...shardNames('moe-edge', 0), layers: [], head: true };
const layout = shardLayoutDocument(manifest.name, [headShard]);
await seedLocalR2({ model: dir, persistTo, modelId, log, extra: headOnShard ? [[SHARD_LAYOUT_OBJECT, new TextEncoder().encode(JSON.stringify(layout))]] : [] });
const worker = headOnShard ? await frontWithHeadShard() : await startLocalWorker({ inspector: true, inspectorPort: 0, persistTo, vars });

/** The front (measured: its inspector) beside a shard that holds the head, as LocalWorker-shaped handle. */
async function frontWithHeadShard(): Promise<LocalWorker> {
  const inspectorPort = await closedPort();
  const w = await startLocalWorkers({ shards: layout.shards, persistTo, vars, inspectorPort });
  return { url: w.url, inspectorUrl: `http://127.0.0.1:${inspectorPort}`, fetch: (u, init) => fetch(u, init), dispose: w.stop };
}
const phases: Phase[] = [];
const refusals: Outcome[] = [];
try {
  await worker.fetch(`${worker.url}/metrics`); // the isolate starts (its workerd process with it), the model does not load
  const mem = await IsolateMemory.connect(await probeOf(worker, modelId));
  const before = await mem.sample();
  log(`before the load: JS ${(before.jsUsedBytes / 2 ** 20).toFixed(1)} MiB, WASM ${before.wasmMemoryBytes}, workerd RSS ${(before.rssBytes / 2 ** 20).toFixed(0)} MiB`);

  const load = await sampled(mem, async () => {
    const r = await worker.fetch(`${worker.url}/healthz`);
    if (r.status !== 200) throw new Error(`the model did not load: ${r.status} ${await r.text()}`);
  });
  await new Promise((r) => setTimeout(r, 500));
  phases.push(summarize('model load', [], load.samples, before, await mem.sample()));
  log(`loaded: ${load.samples.samples.length} samples`);

  // one generation of `single` positions; refused: the longest admitted instead
  let one = await sampled(mem, () => generate(worker.url, single));
  if (one.result.status === 400) {
    refusals.push(one.result);
    const fits = fitsFrom(one.result);
    log(`${single} positions refused (${one.result.error?.code}); ${fits} fit`);
    if (fits > 1) one = await sampled(mem, () => generate(worker.url, fits));
  }
  phases.push(summarize(`one generation, ${one.result.positions} positions`, [one.result], one.samples, before, await mem.sample()));

  // two concurrent generations of `half` positions; refused: the longest pair admitted instead
  let two = await sampled(mem, () => Promise.all([generate(worker.url, half), generate(worker.url, half)]));
  const refused = two.result.find((r) => r.status !== 200);
  if (refused) {
    refusals.push(refused);
    const fitsOne = fitsFrom(refusals.find((r) => r.status === 400) ?? refused);
    const pair = Number.isNaN(fitsOne) ? NaN : predict.pairThatFits(arch, fitsOne, kvType);
    log(`2 x ${half} positions refused (${refused.error?.code}); 2 x ${pair} fit`);
    if (pair > 1) two = await sampled(mem, () => Promise.all([generate(worker.url, pair), generate(worker.url, pair)]));
  }
  phases.push(summarize(`two concurrent generations, ${two.result[0].positions} positions each`, two.result, two.samples, before, await mem.sample()));
  mem.close();

  const run: MemoryRun = {
    command: `npm run bench:memory -- --model ${o.model}${o.var.map((v) => ` --var ${v}`).join('')}${o.positions !== '2048' ? ` --positions ${o.positions}` : ''}${headOnShard ? ' --head-on-shard' : ''}`,
    date: new Date().toISOString(),
    commit: execSync('git rev-parse --short HEAD').toString().trim(),
    uptime: execSync('uptime').toString().trim(),
    loadavg: loadavg(),
    model: { folder: o.model, name: manifest.name, quant: manifest.quant, contextLength: arch.contextLength },
    vars,
    ...(o.note ? { note: o.note } : {}),
    everyMs: EVERY_MS,
    requestedPositions: { single, concurrent: half },
    refusals: refusals.map((r) => ({ positions: r.positions, status: r.status, code: r.error?.code ?? null, message: r.error?.message ?? '' })),
    before,
    phases,
    planner: predict.placements(arch, manifest, phases, kvType, headOnShard),
  };
  if (!o['no-record']) await recordRun(run);
  process.stdout.write(JSON.stringify(run, null, 2) + '\n');
} finally {
  await worker.dispose();
}

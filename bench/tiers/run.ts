// `npm run bench:tiers`: the edge tiers on the granite-shaped q4_0 model in local workerd (issue 13). For 0, 25, 50
// and 100% of the routed experts at the edge (front HOT_EXPERTS none + shard Workers of ~100 MiB, the rest on the
// GPU backend's cpu device, one thread), a streamed completion's decode tokens/s and usage.moe, time to first token
// for 128- and 1,024-token prompts, cold starts (fresh workerd per sample: front to first token, a shard to its
// slice loaded), and one shard isolate's memory under expert calls. Writes bench/results/tiers.{json,md}.
//   npm run bench:tiers -- [--model .cache/models/granite-shaped-q4_0] [--fractions 0,25,50,100] [--max-tokens 64]
//     [--reps 2] [--cold-samples 3] [--shard-budget-mb 100] [--front-memory-mb 120] [--only decode,cold,memory]
//     [--max-minutes 60] [--no-record]
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseManifest } from '../../src/format/manifest';
import { edgeSizes } from '../../src/planning/sizes';
import { SHARD_JS_BYTES, shardExpertRoom } from '../../src/planning/shard-memory';
import { shardLayoutDocument, shardNames } from '../../src/shard/layout';
import { startBackend, type BackendProcess } from '../../tools/dev/backend';
import type { LocalWorkers } from '../../tools/dev/local-workers';
import { seedLocalR2 } from '../../tools/seed-local-r2';
import { promptOf } from '../prompt-of';
import { encoderOf, streamedCompletion, type Timed } from './client';
import { deploy, layoutOf, type TierConfig } from './deploy';
import { recordTiers, type ConfigRun, type TiersRun } from './report';
import { shardColdStarts, shardMemory } from './shard-probe';
import { edgeSplit } from './split';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: '.cache/models/granite-shaped-q4_0' },
    fractions: { type: 'string', default: '0,25,50,100' },
    'max-tokens': { type: 'string', default: '64' },
    reps: { type: 'string', default: '2' },
    'cold-samples': { type: 'string', default: '3' },
    'shard-budget-mb': { type: 'string', default: '100' },
    'front-memory-mb': { type: 'string', default: '120' },
    'persist-to': { type: 'string', default: '.wrangler/bench-tiers' },
    only: { type: 'string', default: 'decode,cold,memory' },
    'max-minutes': { type: 'string', default: '60' },
    'no-record': { type: 'boolean', default: false },
  },
});
const log = (l: string) => process.stderr.write(`bench:tiers: ${l}\n`);
const MiB = 2 ** 20;
const dir = resolve(o.model);
if (!existsSync(join(dir, 'manifest.json'))) {
  log(`no model at ${dir}: make it with \`npm run make:granite -- --quant q4_0\` (writes .cache/models/granite-shaped-q4_0)`);
  process.exit(1);
}
const only = new Set(o.only.split(','));
const fractions = o.fractions.split(',').map((f) => Number(f) / 100);
const MAX_TOKENS = Number(o['max-tokens']);
const REPS = Number(o.reps);
const COLD = Number(o['cold-samples']);
const REQUEST_MS = 600_000;

// everything this run starts, stopped at the end, on failure and at the deadline
const running = new Set<{ stop(): Promise<void> }>();
const stopAll = () => Promise.allSettled([...running].map((r) => r.stop()));
const deadline = setTimeout(() => {
  log(`over --max-minutes ${o['max-minutes']}: stopping everything`);
  void stopAll().then(() => process.exit(2));
}, Number(o['max-minutes']) * 60_000);
deadline.unref();
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => void stopAll().then(() => process.exit(130)));

const manifest = parseManifest(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
const arch = manifest.architecture;
const model = manifest.name;
const sizes = edgeSizes(manifest).expertBytes;
const budgetBytes = Number(o['shard-budget-mb']) * MiB;
const room = shardExpertRoom(arch, budgetBytes);
const uptimeBefore = execSync('uptime').toString().trim();
log(`${model}: ${arch.numLayers} layers x ${arch.numExperts} experts; shard room ${(room / MiB).toFixed(1)} MiB of ${o['shard-budget-mb']} MiB; ${uptimeBefore}`);

const configs: TierConfig[] = fractions.map((fraction) => {
  const split = edgeSplit({ expertBytes: sizes, fraction, shardRoom: room, frontBytes: 0 });
  const label = `${Math.round(fraction * 100)}%`;
  const n = split.plan.shards.length;
  return { label, fraction, split, layout: n ? `tiers-${Math.round(fraction * 100)}.json` : null, shards: Array.from({ length: n }, (_, i) => shardNames('moe-edge', i)) };
});
// the memory probe's shard: filled to its room, layer by layer (so one layer holds top-k of its experts)
const perShard = Math.floor(room / Math.max(...sizes.flat()));
const probeLayers = sizes.map((row, l) => row.map((_, e) => e).filter((e) => l * arch.numExperts + e < perShard));
const PROBE_LAYOUT = 'tiers-probe.json';
const probeDoc = shardLayoutDocument(model, [{ ...shardNames('moe-edge', 0), layers: probeLayers }]);

const persistTo = resolve(o['persist-to']);
const enc = new TextEncoder();
await seedLocalR2({
  model: dir, persistTo, modelId: model, log,
  extra: [...configs.flatMap((c) => (c.layout ? [[c.layout, enc.encode(JSON.stringify(layoutOf(model, c.split)))] as const] : [])), [PROBE_LAYOUT, enc.encode(JSON.stringify(probeDoc))]],
});

const encode = await encoderOf(dir, manifest);
const prompts = { short: promptOf(encode, 8), p128: promptOf(encode, 128), p1024: promptOf(encode, 1024) };
log(`prompts: ${prompts.short.tokens}, ${prompts.p128.tokens} and ${prompts.p1024.tokens} tokens`);
const frontVars = { ISOLATE_MEMORY_MB: o['front-memory-mb'], SHARD_TIMEOUT_MS: String(REQUEST_MS), BACKEND_TIMEOUT_MS: String(REQUEST_MS) };

let backend: BackendProcess | null = null;
const runs: ConfigRun[] = [];
let shards: TiersRun['shard'] = null;
try {
  if (only.has('decode') || only.has('cold')) {
    if (configs.some((c) => c.split.plan.gpu.experts > 0)) {
      backend = await startBackend({ model: dir, device: 'cpu', args: ['--threads', '1'], timeoutMs: 300_000 });
      running.add(backend);
      log(`backend (cpu, 1 thread) on ${backend.url}`);
    }
    for (const c of configs) runs.push(await runConfig(c));
  }
  if (only.has('cold') || only.has('memory')) {
    const probe = { modelDir: dir, manifest, persistTo, layout: PROBE_LAYOUT, shard: 'SHARD_0', log };
    const cold = only.has('cold') ? await shardColdStarts(probe, COLD) : [];
    const memory = only.has('memory') ? await shardMemory({ ...probe, layers: probeLayers, everyMs: 50, prefillCalls: 8, decodeCalls: 300 }) : null;
    shards = { experts: probeDoc.shards[0] ? perShard : 0, budgetBytes, roomBytes: room, shardJsEstimate: SHARD_JS_BYTES, cold, memory };
  }
} finally {
  await stopAll();
}

const run: TiersRun = {
  command: `npm run bench:tiers -- ${process.argv.slice(2).join(' ')}`.trim(),
  date: new Date().toISOString(),
  commit: execSync('git rev-parse --short HEAD').toString().trim(),
  uptime: { before: uptimeBefore, after: execSync('uptime').toString().trim() },
  loadavg: loadavg(),
  model: { folder: o.model, name: model, quant: manifest.quant, layers: arch.numLayers, experts: arch.numExperts, topK: arch.topK },
  settings: { maxTokens: MAX_TOKENS, reps: REPS, coldSamples: COLD, shardBudgetMb: Number(o['shard-budget-mb']), frontMemoryMb: Number(o['front-memory-mb']), prompts: { short: prompts.short.tokens, p128: prompts.p128.tokens, p1024: prompts.p1024.tokens }, backend: 'cpu device, --threads 1' },
  configs: runs,
  shard: shards,
};
if (!o['no-record']) await recordTiers(run);
process.stdout.write(JSON.stringify(run, null, 2) + '\n');
process.exit(0);

/** Cold samples (fresh workerd each), then the warm measurements on the last deployment. */
async function runConfig(c: TierConfig): Promise<ConfigRun> {
  const plan = c.split.plan;
  log(`${c.label}: front ${plan.front.experts}, ${plan.shards.length} shard(s) of ${plan.shards.map((s) => s.experts).join('/') || '-'}, backend ${plan.gpu.experts} experts`);
  const edgeEnds = c.fraction === 0 || c.fraction === 1;
  const samples = only.has('cold') && edgeEnds ? COLD : 1;
  const cold: ConfigRun['cold'] = [];
  let w: LocalWorkers | null = null;
  try {
    for (let i = 0; i < samples; i++) {
      if (w) {
        running.delete(w);
        await w.stop();
      }
      const t0 = performance.now();
      w = await deploy(c, model, persistTo, backend, frontVars);
      running.add(w);
      const startMs = performance.now() - t0;
      // the front's own load first (GET /healthz: trunk from R2, digests, unpack), then the first token
      const h0 = performance.now();
      const health = await fetch(`${w.url}/healthz`, { signal: AbortSignal.timeout(REQUEST_MS) });
      await health.text();
      const loadMs = performance.now() - h0;
      if (health.status !== 200) throw new Error(`${c.label}: front /healthz ${health.status}`);
      const first = await must(streamedCompletion(w.url, model, prompts.short.text, 1, REQUEST_MS), `${c.label} first request`);
      cold.push({ startMs, loadMs, firstTokenMs: loadMs + first.ttftMs });
      log(`${c.label}: cold ${i + 1}/${samples}: wrangler dev up in ${startMs.toFixed(0)} ms; front load ${loadMs.toFixed(0)} ms, first token ${(loadMs + first.ttftMs).toFixed(0)} ms after the first request`);
    }
    const decode: Timed[] = [];
    const ttft: Record<string, Timed> = {};
    if (only.has('decode')) {
      for (let r = 0; r < REPS; r++) {
        const t = await must(streamedCompletion(w!.url, model, prompts.short.text, MAX_TOKENS, REQUEST_MS), `${c.label} decode`);
        decode.push(t);
        log(`${c.label}: decode ${t.completionTokens} tokens at ${t.decodeTokPerS?.toFixed(2)} tok/s (TTFT ${t.ttftMs.toFixed(0)} ms) moe ${JSON.stringify(t.moe)}`);
      }
      const long = edgeEnds ? (['p128', 'p1024'] as const) : (['p128'] as const);
      for (const p of long) {
        const t = await must(streamedCompletion(w!.url, model, prompts[p].text, 2, REQUEST_MS), `${c.label} ${p}`);
        ttft[p] = t;
        log(`${c.label}: ${t.promptTokens}-token prompt: first token in ${t.ttftMs.toFixed(0)} ms`);
      }
    }
    return { label: c.label, fraction: c.fraction, target: c.split.target, edge: c.split.edge, front: plan.front.experts, shards: plan.shards.map((s) => ({ experts: s.experts, bytes: s.bytes })), backend: plan.gpu.experts, cold, decode, ttft };
  } finally {
    if (w) {
      running.delete(w);
      await w.stop();
    }
  }
}

async function must(p: Promise<Timed>, what: string): Promise<Timed> {
  const t = await p;
  if (t.status !== 200) throw new Error(`${what}: ${t.status} ${t.error}`);
  if (t.degraded) throw new Error(`${what}: degraded (${t.degraded})`);
  return t;
}

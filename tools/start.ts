// `npm start`: builds the kernels, seeds the local R2 with a converted model (default models/default), starts the
// GPU backend (gpu-backend/, `--device auto`: WebGPU when an adapter is found, else the cpu device) on a local port
// with a fresh BACKEND_TOKEN, then runs the Worker in local workerd (wrangler, inspector on, reload on change) with
// BACKEND_URL/BACKEND_TOKEN (and a fresh ADMIN_TOKEN) as vars, so the hot/cold split (HOT_EXPERTS in
// wrangler.toml: half of every layer) runs out of the box. With --shards N|all it plans the tiers first
// (`plan --shards`, written under <persist-to>/plan) and runs the front and N expert-shard Workers together, one
// isolate each, with the plan's hot set and shard-layout.json. Offline: no telemetry, no Cloudflare API calls.
// Stopping it stops the backend too. The starters live in tools/dev/.
// Options: --model <folder>, --port 8787, --ip 127.0.0.1, --persist-to .wrangler/state, --skip-build,
// --backend-port 0 (any free port), --device auto|webgpu|cpu, --no-backend, --admin-token <t>,
// --shards N|all, --shard-budget-mb 100, --front-hot-mb <MiB> (default: what ISOLATE_MEMORY_MB leaves),
// --head-on-shard (the embedding and output head on shard 0, not on the front).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBackend, type BackendProcess } from './dev/backend';
import { startLocalWorker, type LocalWorker } from './dev/local-worker';
import { startLocalWorkers } from './dev/local-workers';
import { parseManifest } from '../src/format/manifest';
import { DEFAULT_KV_CACHE_TYPE } from '../src/engine/kv-cache';
import { SHARD_LAYOUT_OBJECT } from '../src/shard/layout';
import { planCommand } from './plan';
import { readBaseConfig, type ShardRef } from './shard-configs';
import { keepWranglerOffline } from './dev/offline-env';
import { seedLocalR2 } from './seed-local-r2';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8787' },
    ip: { type: 'string', default: '127.0.0.1' },
    'persist-to': { type: 'string', default: '.wrangler/state' },
    'skip-build': { type: 'boolean', default: false },
    'backend-port': { type: 'string', default: '0' },
    device: { type: 'string', default: 'auto' },
    'no-backend': { type: 'boolean', default: false },
    'admin-token': { type: 'string' },
    model: { type: 'string', default: 'models/default' },
    shards: { type: 'string' },
    'shard-budget-mb': { type: 'string', default: '100' },
    'front-hot-mb': { type: 'string' },
    'head-on-shard': { type: 'boolean', default: false },
  },
});
keepWranglerOffline();
const persistTo = resolve(values['persist-to']);

let backend: BackendProcess | undefined;
let worker: Pick<LocalWorker, 'url'> & { dispose(): Promise<void> } | undefined;
let stopping = false;
async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await Promise.allSettled([worker?.dispose(), backend?.stop()]);
  }
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stopAll(0));
process.on('exit', () => backend?.kill());

if (!values['skip-build']) {
  const r = spawnSync('npm', ['run', 'build:wasm'], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const modelDir = resolve(values.model);
const manifest = parseManifest(JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8').catch((e: Error) => {
  console.error(`npm start: cannot read ${modelDir}/manifest.json (${e.message}); convert a model first (docs/cli.md)`);
  process.exit(1);
})));
// models/default is served as wrangler.toml's MODEL_ID; any other folder under its own name
const modelId = values.model === 'models/default' ? undefined : manifest.name;
const base = await readBaseConfig();
const plan = values.shards === undefined ? null : await planShards(modelDir, join(persistTo, 'plan'));
await seedLocalR2({ model: modelDir, persistTo, modelId, extra: plan ? [[SHARD_LAYOUT_OBJECT, await readFile(join(plan.dir, SHARD_LAYOUT_OBJECT))]] : [] });

const vars: Record<string, string> = { ...(modelId ? { MODEL_ID: modelId } : {}), ...(plan?.frontVars ?? {}) };
if (!values['no-backend']) {
  const token = randomBytes(24).toString('base64url');
  try {
    backend = await startBackend({ token, model: modelDir, device: values.device, port: values['backend-port'], echo: true });
  } catch (e) {
    console.error(`npm start: ${(e as Error).message}`);
    process.exit(1);
  }
  backend.process.once('exit', (code, signal) => {
    if (stopping) return;
    console.error(`npm start: the GPU backend exited (${code ?? signal}); stopping`);
    void stopAll(1);
  });
  Object.assign(vars, { BACKEND_URL: backend.url, BACKEND_TOKEN: token });
}
const adminToken = values['admin-token'] ?? randomBytes(18).toString('base64url');
vars.ADMIN_TOKEN = adminToken;
console.log(`npm start: admin API token (GET|PUT /admin/hot-set): ${adminToken}`);

try {
  if (plan) {
    const w = await startLocalWorkers({ shards: plan.shards, vars, persistTo, hostname: values.ip, port: Number(values.port), echo: true });
    worker = { url: w.url, dispose: w.stop };
    console.log(`npm start: front + ${plan.shards.length} expert shard(s) (${plan.shards.map((s) => s.worker).join(', ')}), one isolate each`);
  } else {
    worker = await startLocalWorker({ vars, persistTo, hostname: values.ip, port: Number(values.port), inspector: true, watch: true, logLevel: 'info' });
  }
} catch (e) {
  console.error(`npm start: the Worker did not start: ${(e as Error).message}`);
  await stopAll(1);
}
console.log(`npm start: ready on ${worker!.url}`);

/**
 * `plan --shards` for the model, its files written to `dir`: the shards of shard-layout.json and the front's vars
 * from the written wrangler.front.toml (hot set, SHARD_LAYOUT, KV cache type, memory budget).
 */
async function planShards(model: string, dir: string): Promise<{ dir: string; shards: ShardRef[]; frontVars: Record<string, string> }> {
  const args = ['--model', model, '--shards', values.shards!, '--shard-budget-mb', values['shard-budget-mb'], '--write', dir,
    '--kv-cache-type', base.vars.KV_CACHE_TYPE || DEFAULT_KV_CACHE_TYPE];
  if (values['head-on-shard']) args.push('--head-on-shard');
  if (values['front-hot-mb'] !== undefined) args.push('--front-hot-mb', values['front-hot-mb']);
  else args.push('--isolate-memory-mb', base.vars.ISOLATE_MEMORY_MB || '96');
  try {
    await planCommand(args);
  } catch (e) {
    console.error(`npm start: plan --shards: ${(e as Error).message}`);
    process.exit(1);
  }
  const layout = JSON.parse(await readFile(join(dir, SHARD_LAYOUT_OBJECT), 'utf8')) as { shards: ShardRef[] };
  const front = await readBaseConfig(join(dir, 'wrangler.front.toml'));
  const keys = ['HOT_EXPERTS', 'HOT_BUDGET_MB', 'SHARD_LAYOUT', 'KV_CACHE_TYPE', 'ISOLATE_MEMORY_MB'];
  return { dir, shards: layout.shards, frontVars: Object.fromEntries(keys.flatMap((k) => (front.vars[k] === undefined ? [] : [[k, front.vars[k]]]))) };
}

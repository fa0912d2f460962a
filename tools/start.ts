// `npm start`: builds the kernels, seeds the local R2 with models/default, starts the GPU backend
// (gpu-backend/, `--device auto`: WebGPU when an adapter is found, else the cpu device) on a local port with
// a fresh BACKEND_TOKEN, then runs the Worker in local workerd (wrangler, inspector on, reload on change) with
// BACKEND_URL/BACKEND_TOKEN (and a fresh ADMIN_TOKEN) as vars, so the hot/cold split (HOT_EXPERTS in
// wrangler.toml: half of every layer) runs out of the box. Offline: no telemetry, no Cloudflare API calls.
// Stopping it stops the backend too. Both starters live in tools/dev/.
// Options: --port 8787, --ip 127.0.0.1, --persist-to .wrangler/state, --skip-build, --backend-port 0 (any
// free port), --device auto|webgpu|cpu, --no-backend, --admin-token <t>.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startBackend, type BackendProcess } from './dev/backend';
import { startLocalWorker, type LocalWorker } from './dev/local-worker';
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
  },
});
keepWranglerOffline();
const persistTo = resolve(values['persist-to']);

let backend: BackendProcess | undefined;
let worker: LocalWorker | undefined;
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
await seedLocalR2({ persistTo });

const vars: Record<string, string> = {};
if (!values['no-backend']) {
  const token = randomBytes(24).toString('base64url');
  try {
    backend = await startBackend({ token, device: values.device, port: values['backend-port'], echo: true });
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
  worker = await startLocalWorker({ vars, persistTo, hostname: values.ip, port: Number(values.port), inspector: true, watch: true, logLevel: 'info' });
} catch (e) {
  console.error(`npm start: the Worker did not start: ${(e as Error).message}`);
  await stopAll(1);
}
console.log(`npm start: ready on ${worker!.url}`);

// `npm start`: builds the kernels, seeds the local R2 with models/default, starts the GPU backend
// (gpu-backend/, `--device auto`: WebGPU when an adapter is found, else the cpu device) on a local port with
// a fresh BACKEND_TOKEN, then runs `wrangler dev` with BACKEND_URL/BACKEND_TOKEN (and a fresh ADMIN_TOKEN)
// passed as --var, so the hot/cold split (HOT_EXPERTS in wrangler.toml: half of every layer) runs out of
// the box. Offline: no telemetry, no Cloudflare API calls. Stopping it stops the backend too.
// Options: --port 8787, --ip 127.0.0.1, --persist-to .wrangler/state, --skip-build, --backend-port 0 (any
// free port), --device auto|webgpu|cpu, --no-backend, --admin-token <t>.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { seedLocalR2 } from './seed-local-r2';

export const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
} as const;

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
Object.assign(process.env, { ...OFFLINE_ENV, ...process.env });

const children: ChildProcess[] = [];
let stopping = false;
function stopAll(signal: NodeJS.Signals = 'SIGTERM'): void {
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stopAll(signal));
process.on('exit', () => stopAll('SIGKILL'));

/** Runs gpu-backend/main.ts in its own Node process (tsx loaded in-process) and waits for its listening line. */
function startBackend(token: string): Promise<string> {
  const args = ['--import', 'tsx', 'gpu-backend/main.ts', '--model', 'models/default', '--device', values.device, '--port', values['backend-port']];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BACKEND_TOKEN: token } });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      process.stdout.write(d);
      out += d;
      const m = /gpu-backend listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`gpu-backend exited (${code ?? signal}) before listening`));
      if (!stopping) {
        console.error(`npm start: the GPU backend exited (${code ?? signal}); stopping`);
        stopAll();
        process.exitCode = 1;
      }
    });
  });
}

if (!values['skip-build']) {
  const r = spawnSync('npm', ['run', 'build:wasm'], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
await seedLocalR2({ persistTo: values['persist-to'] });

const vars: string[] = [];
if (!values['no-backend']) {
  const token = randomBytes(24).toString('base64url');
  let url: string;
  try {
    url = await startBackend(token);
  } catch (e) {
    console.error(`npm start: ${(e as Error).message}`);
    process.exit(1);
  }
  vars.push('--var', `BACKEND_URL:${url}`, '--var', `BACKEND_TOKEN:${token}`);
}
const adminToken = values['admin-token'] ?? randomBytes(18).toString('base64url');
vars.push('--var', `ADMIN_TOKEN:${adminToken}`);
console.log(`npm start: admin API token (GET|PUT /admin/hot-set): ${adminToken}`);

const wranglerBin = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin', 'wrangler.js');
const wrangler = spawn(
  process.execPath,
  [wranglerBin, 'dev', '--port', values.port, '--ip', values.ip, '--persist-to', values['persist-to'], '--show-interactive-dev-session=false', ...vars],
  { stdio: 'inherit', env: process.env },
);
children.push(wrangler);
wrangler.on('exit', (code, signal) => {
  stopAll();
  process.exit(code ?? (signal ? 1 : 0));
});

// `npm start`: builds the kernels, seeds the local R2 with models/default, then runs `wrangler dev`
// (offline: no telemetry, no Cloudflare API calls). Options: --port 8787, --ip 127.0.0.1,
// --persist-to .wrangler/state, --skip-build.
import { spawn, spawnSync } from 'node:child_process';
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
  },
});
Object.assign(process.env, { ...OFFLINE_ENV, ...process.env });

if (!values['skip-build']) {
  const r = spawnSync('npm', ['run', 'build:wasm'], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
await seedLocalR2({ persistTo: values['persist-to'] });

const wranglerBin = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin', 'wrangler.js');
const child = spawn(
  process.execPath,
  [wranglerBin, 'dev', '--port', values.port, '--ip', values.ip, '--persist-to', values['persist-to'], '--show-interactive-dev-session=false'],
  { stdio: 'inherit', env: process.env },
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

// Runs moe-edge's engine inside local workerd for the e2e benchmark: starts bench/e2e/worker.ts with wrangler's
// unstable_startWorker (no inspector, random port, offline), sends it the model's objects, then one request per round.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RoundResult } from './engine-round';

const CONFIG = fileURLToPath(new URL('./wrangler.toml', import.meta.url));
const OFFLINE_ENV = { WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_HIDE_BANNER: 'true', WRANGLER_SEND_ERROR_REPORTS: 'false' };

export interface WorkerdEngine {
  kernels: string;
  round(prompt: number[], decode: number): Promise<RoundResult>;
  dispose(): Promise<void>;
}

export async function startWorkerdEngine(modelDir: string): Promise<WorkerdEngine> {
  Object.assign(process.env, OFFLINE_ENV);
  const { unstable_startWorker } = await import('wrangler');
  const worker = await unstable_startWorker({ config: CONFIG, dev: { inspector: false, server: { hostname: '127.0.0.1', port: 0 }, watch: false, logLevel: 'warn' } });
  await worker.ready;
  const call = async (path: string, init: RequestInit) => {
    const res = await worker.fetch(`http://bench${path}`, init as never);
    if (!res.ok) throw new Error(`workerd ${path}: ${res.status} ${await res.text()}`);
    return res;
  };
  // the manifest and the objects it lists (a model folder may hold other files: a card, evaluations)
  const manifest = JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8')) as { objects: Record<string, unknown> };
  for (const name of ['manifest.json', ...Object.keys(manifest.objects)]) {
    await call(`/object/${encodeURIComponent(name)}`, { method: 'PUT', body: await readFile(join(modelDir, name)) });
  }
  const { kernels } = (await (await call('/load', { method: 'POST' })).json()) as { kernels: string };
  return {
    kernels,
    round: async (prompt, decode) => (await (await call('/round', { method: 'POST', body: JSON.stringify({ prompt, decode }) })).json()) as RoundResult,
    dispose: () => worker.dispose(),
  };
}

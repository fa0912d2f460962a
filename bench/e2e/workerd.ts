// Runs moe-edge's engine inside local workerd for the e2e benchmark: starts bench/e2e/worker.ts with wrangler's
// unstable_startWorker (tools/dev/local-worker.ts: no inspector, random port, offline), sends it the model's objects, then one request per round.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLocalWorker } from '../../tools/dev/local-worker';
import type { KvCacheType } from '../../src/engine/kv-cache';
import type { RoundResult } from './engine-round';

const CONFIG = fileURLToPath(new URL('./wrangler.toml', import.meta.url));

export interface WorkerdEngine {
  kernels: string;
  round(prompt: number[], decode: number, kvType?: KvCacheType): Promise<RoundResult>;
  dispose(): Promise<void>;
}

/** fusedDot: force the relaxed kernels' integer-dot path (default: the one the engine picks, src/kernels/fused-dot.ts) */
export async function startWorkerdEngine(modelDir: string, fusedDot?: boolean): Promise<WorkerdEngine> {
  const worker = await startLocalWorker({ config: CONFIG });
  const call = async (path: string, init: RequestInit) => {
    const res = await worker.fetch(`http://bench${path}`, init).catch((e: unknown) => {
      // a pooled connection the local proxy closed while idle (undici: SocketError "other side closed", seen
      // after a ~20 s gap between rounds): the request never reached the Worker, so it is sent once more
      if (String((e as { cause?: unknown }).cause).includes('other side closed')) return worker.fetch(`http://bench${path}`, init);
      throw e;
    });
    if (!res.ok) throw new Error(`workerd ${path}: ${res.status} ${await res.text()}`);
    return res;
  };
  // the manifest and the objects it lists (a model folder may hold other files: a card, evaluations)
  const manifest = JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8')) as { objects: Record<string, unknown> };
  for (const name of ['manifest.json', ...Object.keys(manifest.objects)]) {
    await call(`/object/${encodeURIComponent(name)}`, { method: 'PUT', body: await readFile(join(modelDir, name)) });
  }
  const { kernels } = (await (await call(fusedDot === undefined ? '/load' : `/load?fusedDot=${fusedDot ? 1 : 0}`, { method: 'POST' })).json()) as { kernels: string };
  return {
    kernels,
    round: async (prompt, decode, kvType) => (await (await call('/round', { method: 'POST', body: JSON.stringify({ prompt, decode, kvType }) })).json()) as RoundResult,
    dispose: () => worker.dispose(),
  };
}

// workerd half of the mat-vec benchmark: starts bench/matvec/worker.ts in local workerd through wrangler's
// unstable_startWorker (no inspector, random port) and sends it one request per case.
import { fileURLToPath } from 'node:url';
import { buildCases, type ExpertDims } from './cases';
import { describe } from './node';
import type { CaseResult, Executor, MeasureOptions } from './measure';

const CONFIG = fileURLToPath(new URL('./wrangler.toml', import.meta.url));

// Keep wrangler offline and quiet (see /work/shared/pitfalls.md).
const OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
};

export async function runWorkerd(models: readonly ExpertDims[], opts: MeasureOptions, log: (line: string) => void): Promise<CaseResult[]> {
  Object.assign(process.env, OFFLINE_ENV);
  // imported only now: the Node half runs without wrangler loaded, and wrangler reads the env above
  const { unstable_startWorker } = await import('wrangler');
  const worker = await unstable_startWorker({
    config: CONFIG,
    dev: { inspector: false, server: { hostname: '127.0.0.1', port: 0 }, watch: false, logLevel: 'warn' },
  });
  try {
    await worker.ready;
    const call = async <T>(path: string, body?: unknown): Promise<T> => {
      const res = await worker.fetch(`http://bench${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`workerd ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };
    const cases = buildCases(models, await call<Executor[]>('/executors'));
    const out: CaseResult[] = [];
    for (const [i, spec] of cases.entries()) {
      const r = await call<CaseResult>('/case', { spec, opts });
      log(`workerd ${i + 1}/${cases.length} ${describe(r)}`);
      out.push(r);
    }
    return out;
  } finally {
    await worker.dispose();
  }
}

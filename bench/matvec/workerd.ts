// workerd half of the mat-vec benchmark: starts bench/matvec/worker.ts in local workerd through wrangler's
// unstable_startWorker (tools/dev/local-worker.ts: no inspector, random port, offline) and sends it one request per case.
import { fileURLToPath } from 'node:url';
import { startLocalWorker } from '../../tools/dev/local-worker';
import { buildCases, type ExpertDims } from './cases';
import { describe } from './node';
import type { CaseResult, Executor, MeasureOptions } from './measure';

const CONFIG = fileURLToPath(new URL('./wrangler.toml', import.meta.url));

export async function runWorkerd(models: readonly ExpertDims[], opts: MeasureOptions, log: (line: string) => void): Promise<CaseResult[]> {
  // wrangler is imported only inside: the Node half runs without it loaded
  const worker = await startLocalWorker({ config: CONFIG });
  try {
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

// Runs a Worker in local workerd through wrangler's unstable_startWorker, offline: the one starter for
// `npm start`, the load, mat-vec and e2e benchmarks and the kernel A/B in wasm/dev. The inspector is off
// unless asked for: its proxy logs every outbound fetch and grows without bound under load.
import { fileURLToPath } from 'node:url';
import { keepWranglerOffline } from './offline-env';

export interface LocalWorkerOptions {
  /** wrangler.toml of the Worker (default the project's) */
  config?: string;
  /** plain-text bindings over the config's [vars], e.g. { HOT_EXPERTS: 'all' } */
  vars?: Record<string, string>;
  /** secret bindings, e.g. { BACKEND_TOKEN: '...' } */
  secrets?: Record<string, string>;
  /** local state (R2, ...) as `wrangler dev --persist-to`; false: in memory; default wrangler's (.wrangler/state) */
  persistTo?: string | false;
  /** default 127.0.0.1 */
  hostname?: string;
  /** default 0: any free port (read it back from `url`) */
  port?: number;
  /** the V8 inspector (DevTools) on its default port (default false) */
  inspector?: boolean;
  /** with `inspector`: the port of its proxy (default wrangler's, 9229 or the next free one; 0: any free port) */
  inspectorPort?: number;
  /** reload when the sources change (default false) */
  watch?: boolean;
  /** wrangler's log level (default 'warn'; 'info' logs each request) */
  logLevel?: 'none' | 'error' | 'warn' | 'info' | 'log' | 'debug';
}

export interface LocalWorker {
  /** origin the Worker listens on, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** with `inspector`: the inspector proxy's origin (its targets at /json), e.g. http://127.0.0.1:9229 */
  readonly inspectorUrl: string | null;
  /** a request straight to the Worker (the URL's host is ignored) */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

const PROJECT_CONFIG = fileURLToPath(new URL('../../wrangler.toml', import.meta.url));

/** Starts the Worker and resolves once it is ready to take requests. */
export async function startLocalWorker(opts: LocalWorkerOptions = {}): Promise<LocalWorker> {
  keepWranglerOffline();
  // imported only now: callers that never start a Worker do not load wrangler, and it reads the env above
  const { unstable_startWorker } = await import('wrangler');
  const bindings = {
    ...Object.fromEntries(Object.entries(opts.vars ?? {}).map(([k, value]) => [k, { type: 'plain_text' as const, value }])),
    ...Object.fromEntries(Object.entries(opts.secrets ?? {}).map(([k, value]) => [k, { type: 'secret_text' as const, value }])),
  };
  const worker = await unstable_startWorker({
    config: opts.config ?? PROJECT_CONFIG,
    bindings,
    dev: {
      ...(opts.inspector ? (opts.inspectorPort === undefined ? {} : { inspector: { port: opts.inspectorPort } }) : { inspector: false as const }),
      server: { hostname: opts.hostname ?? '127.0.0.1', port: opts.port ?? 0 },
      watch: opts.watch ?? false,
      persist: opts.persistTo,
      logLevel: opts.logLevel ?? 'warn',
    },
  });
  try {
    await worker.ready;
    const url = (await worker.url).origin;
    const inspector = opts.inspector ? await worker.inspectorUrl : undefined;
    return {
      url,
      inspectorUrl: inspector ? `http://${inspector.host}` : null,
      fetch: async (u, init) => (await worker.fetch(u, init as never)) as unknown as Response,
      dispose: () => worker.dispose(),
    };
  } catch (e) {
    await worker.dispose();
    throw e;
  }
}

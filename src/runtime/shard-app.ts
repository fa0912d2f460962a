// The expert-shard Worker (ROLE = "shard"): the same bundle as the front, serving only what the front needs of it
// through its service binding: /v1/experts/ws (the GPU backend's WebSocket protocol, one socket per generation),
// /healthz and /metrics (its WASM memory gauges). It loads its slice of experts (SHARD, SHARD_LAYOUT) on its first
// request and keeps it for the isolate's life; a failed load is forgotten, so the next request retries.
import { Hono } from 'hono';
import { appConfig, type AppEnv } from '../config/env';
import { describeError } from '../http/errors';
import type { Kernels } from '../kernels/types';
import { errorFrameFor, WireError } from '../protocol/expert-wire';
import { metrics } from './metrics';
import { createWorkerKernels } from './worker-kernels';
import { r2Source } from '../store/source-r2';
import { answerFrame } from '../shard/answer';
import { loadShardSlice, type ShardSlice } from '../shard/slice';

interface Loaded {
  readonly k: Kernels;
  readonly slice: ShardSlice;
}

/** Counters of this shard isolate, appended to /metrics. */
const counts = { calls: 0, pairs: 0, sessions: 0, errors: 0 };

export function createShardApp() {
  const loads = new Map<string, Promise<Loaded>>();
  const load = (env: AppEnv, waitUntil: (p: Promise<unknown>) => void): Promise<Loaded> => {
    const cfg = appConfig(env);
    const layoutName = cfg.shards?.layoutName ?? '';
    const key = `${cfg.modelKeyPrefix}\u0000${layoutName}\u0000${cfg.shard}`;
    let p = loads.get(key);
    if (!p) {
      if (!layoutName) return Promise.reject(new WireError(500, 'invalid_config', 'a shard needs SHARD_LAYOUT (the layout object beside the model)'));
      const k = createWorkerKernels();
      const untrack = metrics.trackHeap(cfg.modelId, k.heap);
      const loading = loadShardSlice(k, r2Source(env.MODELS, cfg.modelKeyPrefix), layoutName, cfg.shard!).then((slice) => ({ k, slice }));
      p = loading;
      loads.set(key, p);
      // tied to the request that started it: a client going away must not cancel the reads others wait on
      waitUntil(loading.catch(() => {
        untrack();
        if (loads.get(key) === loading) loads.delete(key);
      }));
    }
    return p;
  };

  const app = new Hono<{ Bindings: AppEnv }>();
  app.get('/healthz', async (c) => {
    try {
      const { slice } = await load(c.env, (p) => c.executionCtx.waitUntil(p));
      return c.json({ status: 'ok', role: 'shard', shard: slice.binding, model: slice.manifest.name, experts: slice.count, bytes: slice.bytes });
    } catch (err) {
      return c.json({ status: 'error', role: 'shard', error: describeError(err).body.error }, 503);
    }
  });
  app.get('/metrics', (c) => {
    const text = metrics.render([appConfig(c.env).modelId]) +
      `# TYPE moe_shard_calls_total counter\nmoe_shard_calls_total ${counts.calls}\n` +
      `# TYPE moe_shard_pairs_total counter\nmoe_shard_pairs_total ${counts.pairs}\n` +
      `# TYPE moe_shard_errors_total counter\nmoe_shard_errors_total ${counts.errors}\n` +
      `# TYPE moe_shard_ws_sessions gauge\nmoe_shard_ws_sessions ${counts.sessions}\n`;
    return c.body(text, 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  app.get('/v1/experts/ws', async (c) => {
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') return c.text('expected a WebSocket upgrade', 426);
    let loaded: Loaded;
    try {
      loaded = await load(c.env, (p) => c.executionCtx.waitUntil(p));
    } catch (err) {
      // the front reads the refusal's error frame (src/remote/connect.ts) and degrades with its message
      return new Response(errorFrameFor(new WireError(503, 'shard_unavailable', `shard ${appConfig(c.env).shard} cannot load its experts: ${(err as Error)?.message ?? err}`), new Uint8Array(8)) as Uint8Array<ArrayBuffer>, {
        status: 503, headers: { 'content-type': 'application/octet-stream' },
      });
    }
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.binaryType = 'arraybuffer';
    counts.sessions++;
    server.addEventListener('close', () => {
      counts.sessions--;
    });
    server.addEventListener('message', (ev: MessageEvent) => {
      counts.calls++;
      const data = ev.data;
      const bytes = typeof data === 'string' ? null : new Uint8Array(data as ArrayBuffer);
      const a = bytes
        ? answerFrame(loaded.k, loaded.slice, bytes)
        : { frame: errorFrameFor(new WireError(400, 'bad_frame', 'text messages are not frames; send binary'), loaded.slice.tag), pairs: 0, error: true };
      counts.pairs += a.pairs;
      if (a.error) counts.errors++;
      try {
        server.send(a.frame);
      } catch {
        // the front went away mid-call: nothing to answer
      }
    });
    return new Response(null, { status: 101, webSocket: client });
  });
  app.notFound((c) => c.json({ error: { message: `${c.req.path} is not served by an expert shard`, code: 'not_found' } }, 404));
  return app;
}

// The backend's HTTP surface (Hono on @hono/node-server): POST /v1/experts (one frame), GET /v1/experts/ws
// (a session of frames), GET /healthz (open), GET /metrics; bearer BACKEND_TOKEN on all but health.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createNodeWebSocket } from '@hono/node-ws';
import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { encodeError, errorFrameFor, HEADER_BYTES, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, tagHex, WireError } from '../src/protocol/expert-wire';
import type { ExpertDevice } from './devices/device';
import type { Metrics } from './metrics';
import type { BackendModel } from './model';
import type { PrefillService } from './prefill/service';
import type { ExpertService } from './service';

export interface ServerOptions {
  model: BackendModel;
  device: ExpertDevice;
  service: ExpertService;
  /** The prefill call; absent: this replica does not hold the trunk and every expert, and refuses it. */
  prefill?: PrefillService | null;
  metrics: Metrics;
  /** null: no auth (local development only) */
  token: string | null;
  host?: string;
  port?: number; // 0: any free port
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const MAX_FRAME_BYTES = HEADER_BYTES + MAX_PAYLOAD_BYTES;

export function createBackendApp(o: ServerOptions) {
  const { model, device, service, metrics } = o;
  const app = new Hono();
  const nodeWs = createNodeWebSocket({ app });
  nodeWs.wss.options.maxPayload = MAX_FRAME_BYTES; // a bigger message closes the session (1009), as workerd would

  // a fresh headers object each time: @hono/node-server writes content-length into the one it is given
  const frame = (status: number, bytes: Uint8Array) =>
    new Response(bytes as Uint8Array<ArrayBuffer>, { status, headers: { 'content-type': 'application/octet-stream' } });
  const errorFrame = (status: number, code: string, message: string) => {
    metrics.error(code);
    return frame(status, encodeError({ requestId: 0, modelTag: model.tag, status, code, message }));
  };

  app.get('/healthz', (c) => c.json({
    status: 'ok',
    model: model.name,
    modelTag: tagHex(model.tag),
    protocol: PROTOCOL_VERSION,
    device: device.name,
    layers: [model.layers.lo, model.layers.hi],
    experts: [model.experts.lo, model.experts.hi],
    loadedExperts: model.loadedExperts,
    residentBytes: device.residentBytes,
    prefill: Boolean(o.prefill),
  }));

  // Binary routes answer 401 as an error frame (the client decodes every body the same way); /metrics as JSON.
  app.use('/v1/*', bearer(o.token, () => errorFrame(401, 'unauthorized', 'missing or wrong bearer token')));
  app.use('/metrics', bearer(o.token, () => new Response(JSON.stringify({ error: { message: 'missing or wrong bearer token', code: 'unauthorized' } }), {
    status: 401, headers: { 'content-type': 'application/json' },
  })));

  app.get('/metrics', (c) => c.text(metrics.render({ residentBytes: device.residentBytes, loadedExperts: model.loadedExperts, device: device.name, model: model.name }), 200, {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
  }));

  app.post('/v1/experts',
    bodyLimit({ maxSize: MAX_FRAME_BYTES, onError: () => errorFrame(413, 'frame_too_large', `a frame is at most ${MAX_FRAME_BYTES} bytes`) }),
    async (c) => {
      const a = await service.handle(new Uint8Array(await c.req.arrayBuffer()), 'http');
      return frame(a.status, a.frame);
    });

  // The prefill call: one request frame in, a stream of KV frames out (src/protocol/prefill-wire.ts).
  app.post('/v1/prefill',
    bodyLimit({ maxSize: MAX_FRAME_BYTES, onError: () => errorFrame(413, 'frame_too_large', `a frame is at most ${MAX_FRAME_BYTES} bytes`) }),
    async (c) => {
      if (!o.prefill) return errorFrame(404, 'prefill_unavailable', 'this replica does not prefill: it needs the trunk and every expert (npm run backend -- --prefill on)');
      const a = await o.prefill.handle(new Uint8Array(await c.req.arrayBuffer()));
      return new Response(a.body as BodyInit, { status: a.status, headers: { 'content-type': 'application/octet-stream' } });
    });

  app.get('/v1/experts/ws', nodeWs.upgradeWebSocket(() => {
    // Calls of one session are computed concurrently (and batched with everyone's) but answered in arrival
    // order, so a client may match replies FIFO as well as by requestId.
    let tail: Promise<unknown> = Promise.resolve();
    return {
      onOpen() { metrics.wsOpen++; },
      onClose() { metrics.wsOpen--; },
      onMessage(evt, ws) {
        const send = (bytes: Uint8Array) => { if (ws.readyState === 1) ws.send(bytes as Uint8Array<ArrayBuffer>); };
        let answer: Promise<Uint8Array>;
        if (evt.data instanceof ArrayBuffer) answer = service.handle(new Uint8Array(evt.data), 'ws').then((a) => a.frame);
        else {
          metrics.calls.ws++;
          metrics.error('bad_frame');
          answer = Promise.resolve(errorFrameFor(new WireError(400, 'bad_frame', 'text messages are not frames; send binary'), model.tag));
        }
        tail = tail.then(() => answer).then(send);
      },
    };
  }));

  app.notFound(() => new Response(JSON.stringify({ error: { message: 'not found', code: 'not_found' } }), { status: 404, headers: { 'content-type': 'application/json' } }));
  app.onError((err) => {
    metrics.error('internal');
    return frame(500, errorFrameFor(err, model.tag));
  });
  return { app, injectWebSocket: nodeWs.injectWebSocket, wss: nodeWs.wss };
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const { app, injectWebSocket, wss } = createBackendApp(o);
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: o.host ?? '127.0.0.1', port: o.port ?? 8788 }, () => resolve(s));
    s.once('error', reject);
  });
  injectWebSocket(server);
  const port = (server.address() as AddressInfo).port;
  const host = o.host ?? '127.0.0.1';
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () => new Promise<void>((resolve) => {
      for (const ws of wss.clients) ws.terminate();
      server.close(() => resolve());
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    }),
  };
}

// Constant-time bearer check: both sides hashed first, so neither content nor length leaks through timing.
function bearer(token: string | null, refuse: () => Response): MiddlewareHandler {
  const want = token === null ? null : createHash('sha256').update(token).digest();
  return async (c, next) => {
    if (want === null) return next();
    const m = /^Bearer\s+(.+)$/i.exec((c.req.header('authorization') ?? '').trim());
    const got = createHash('sha256').update(m ? m[1].trim() : '').digest();
    if (!m || !timingSafeEqual(got, want)) return refuse();
    return next();
  };
}

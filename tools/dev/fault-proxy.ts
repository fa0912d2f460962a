// A WebSocket proxy in front of the real GPU backend that misbehaves on purpose, for fault tests and the
// split benchmark's injected round-trip delay. The fault is chosen by the path prefix of the URL the
// Worker is given as BACKEND_URL, so concurrent tests never share state:
//   <proxy>/pass                 relay both ways
//   <proxy>/delay/<ms>           hold every reply <ms> before relaying it (order kept)
//   <proxy>/stall                never relay a reply
//   <proxy>/garbage              replace every reply with random bytes
//   <proxy>/wrong-shape          relay replies with their last row cut (a valid frame of the wrong shape)
//   <proxy>/close-after/<n>      relay n replies, then drop the connection
//   <proxy>/kill-after/<n>       relay n replies, then call `kill` (SIGKILL a backend process) and relay nothing more
// The prefill call (POST .../v1/prefill) goes through the same modes, on the bytes of its KV stream:
//   <proxy>/pass, <proxy>/delay/<ms> (the answer starts <ms> late), <proxy>/stall (no answer at all)
//   <proxy>/truncate/<n>         relay the first n bytes of the stream, then end it cleanly
//   <proxy>/corrupt/<n>          flip the bits of byte n of the stream
//   <proxy>/wrong-tag            flip a bit of the request's model tag on its way to the backend
//   <proxy>/kill-after/<n>       relay n bytes, then call `kill` and cut the stream (the backend dies mid-stream)
//   <proxy>/link/<ms>/<mbps>     a network link: the answer starts <ms> late (the injected round trip) and its
//                                bytes arrive no faster than <mbps> megabits/s (bench:prefill)
// The upstream for a mode is `upstream(mode)`. Run as a CLI (`npx tsx tools/dev/fault-proxy.ts --upstream URL
// [--port 0]`) to keep it off the event loop of the process it measures.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { createNodeWebSocket } from '@hono/node-ws';
import { Hono } from 'hono';
import { decodeResult, encodeResult } from '../../src/protocol/expert-wire';

export interface FaultProxyOptions {
  /** The backend base URL for a mode (first path segment: 'pass', 'delay', 'kill-after', ...) of a call kind. */
  upstream: (mode: string, call: 'experts' | 'prefill') => string;
  /** For kill-after/<n>: kill that kind's backend (it stays dead). */
  kill?: (call: 'experts' | 'prefill') => void;
  port?: number;
}

export interface FaultProxy {
  /** http://127.0.0.1:<port>; append a mode, e.g. `${url}/delay/20`. */
  readonly url: string;
  close(): Promise<void>;
}

type Transform = (reply: Uint8Array, index: number) => Uint8Array | null | 'close' | 'kill';

function transformFor(parts: string[]): Transform | undefined {
  const n = Number(parts[1]);
  switch (parts[0]) {
    case 'pass':
    case 'delay':
      return (r) => r;
    case 'stall':
      return () => null;
    case 'garbage':
      return (r) => new Uint8Array(randomBytes(Math.max(r.length, 32)));
    case 'wrong-shape':
      return (r) => {
        const f = decodeResult(r);
        const count = Math.max(0, f.count - 1);
        return encodeResult({ ...f, count, values: f.values.subarray(0, count * f.hidden) });
      };
    case 'close-after':
      return (r, i) => (i < n ? r : 'close');
    case 'kill-after':
      return (r, i) => (i < n ? r : 'kill');
    default:
      return undefined;
  }
}

export async function startFaultProxy(o: FaultProxyOptions): Promise<FaultProxy> {
  const app = new Hono();
  const { upgradeWebSocket, injectWebSocket, wss } = createNodeWebSocket({ app });
  let killed = false;
  let killedPrefill = false;

  app.post('*', async (c) => {
    const parts = c.req.path.split('/').filter(Boolean);
    const mode = parts.slice(0, Math.max(0, parts.length - 2)); // strip v1/prefill
    const n = Number(mode[1]);
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (mode[0] === 'wrong-tag') body[12] ^= 1; // the header's model tag starts at byte 12
    if (mode[0] === 'stall') return new Promise<Response>(() => {});
    if (mode[0] === 'delay' || mode[0] === 'link') await new Promise((r) => setTimeout(r, n));
    const bitsPerMs = mode[0] === 'link' ? Number(mode[2]) * 1e3 : Infinity;
    const t0 = performance.now();
    let up: Response;
    try {
      up = await fetch(`${o.upstream(mode[0] ?? 'pass', 'prefill').replace(/\/+$/, '')}/${parts.slice(-2).join('/')}`, {
        method: 'POST',
        headers: { authorization: c.req.header('authorization') ?? '', 'content-type': 'application/octet-stream' },
        body,
      });
    } catch {
      return c.text('upstream unreachable', 502); // as a gateway in front of a dead backend answers
    }
    let at = 0;
    const cut = mode[0] === 'truncate' || mode[0] === 'kill-after' ? n : Infinity;
    const stream = up.body!.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      async transform(chunk, ctl) {
        const out = chunk.slice(0, Math.max(0, Math.min(chunk.length, cut - at)));
        const due = t0 + ((at + chunk.length) * 8) / bitsPerMs; // when a link of that rate would have carried it
        if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
        if (mode[0] === 'corrupt' && n >= at && n < at + out.length) out[n - at] ^= 0xff;
        at += chunk.length;
        if (out.length) ctl.enqueue(out);
        if (at >= cut) {
          if (mode[0] === 'kill-after') {
            if (!killedPrefill) o.kill?.('prefill');
            killedPrefill = true;
            ctl.error(new Error('backend killed'));
          } else ctl.terminate();
        }
      },
    }));
    return new Response(stream, { status: up.status, headers: { 'content-type': 'application/octet-stream' } });
  });

  app.get(
    '*',
    upgradeWebSocket((c) => {
      const parts = c.req.path.split('/').filter(Boolean);
      const wsAt = parts.lastIndexOf('ws');
      const mode = parts.slice(0, Math.max(0, wsAt - 2)); // strip v1/experts/ws
      const transform = transformFor(mode);
      const delayMs = mode[0] === 'delay' ? Number(mode[1]) : 0;
      const auth = c.req.header('authorization') ?? '';
      let upstream: WebSocket | null = null;
      const early: ArrayBuffer[] = [];
      let replies = 0;
      return {
        onOpen(_evt, client) {
          if (!transform) return client.close(4000, `unknown fault mode ${mode.join('/')}`);
          const base = o.upstream(mode[0]!, 'experts').replace(/\/+$/, '').replace(/^http/, 'ws');
          const Ctor = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;
          const up = new Ctor(`${base}/v1/experts/ws`, { headers: { authorization: auth } });
          up.binaryType = 'arraybuffer';
          upstream = up;
          up.addEventListener('open', () => {
            for (const m of early.splice(0)) up.send(m);
          });
          up.addEventListener('message', (evt) => {
            const out = transform(new Uint8Array(evt.data as ArrayBuffer), replies++);
            if (out === 'close') return client.raw?.terminate();
            if (out === 'kill') {
              if (!killed) o.kill?.('experts');
              killed = true;
              return;
            }
            if (!out) return;
            const send = () => client.readyState === 1 && client.send(out as Uint8Array<ArrayBuffer>);
            if (delayMs > 0) setTimeout(send, delayMs);
            else send();
          });
          up.addEventListener('close', () => client.readyState === 1 && client.close(1011, 'upstream closed'));
          up.addEventListener('error', () => client.readyState === 1 && client.close(1011, 'upstream error'));
        },
        onMessage(evt) {
          const data = evt.data as ArrayBuffer;
          if (upstream?.readyState === 1) upstream.send(data);
          else early.push(data);
        },
        onClose() {
          upstream?.close();
        },
      };
    }),
  );

  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: o.port ?? 0 }, () => resolve(s));
    s.once('error', reject);
  });
  injectWebSocket(server);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } } });
  if (!values.upstream) throw new Error('--upstream <backend url> is required');
  const upstream = values.upstream;
  const proxy = await startFaultProxy({ upstream: () => upstream, port: Number(values.port) });
  console.log(`fault-proxy listening on ${proxy.url}`);
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => void proxy.close().then(() => process.exit(0)));
}

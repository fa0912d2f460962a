// Opens the WebSocket to an expert server's /v1/experts/ws (the GPU backend, or an expert-shard Worker through its
// service binding) with the bearer token, in workerd (fetch with an Upgrade header, then accept(): its WebSocket
// constructor cannot send headers) and in Node (the global WebSocket, which takes headers). Resolves once the
// socket is open; rejects with a BackendError.
import type { BackendTarget } from '../engine/api';
import { decodeFrame } from '../protocol/expert-wire';
import { BackendTimeoutError, BackendUnavailableError, type BackendError } from './errors';

export const EXPERTS_WS_PATH = '/v1/experts/ws';

/** The backend's base URL (any path prefix kept) joined with `path`, as http(s). */
export function backendUrl(base: string, path: string): string {
  return base.replace(/^ws(s?):/i, 'http$1:').replace(/\/+$/, '') + path;
}

/** True in workerd, whose sockets come from fetch() + accept(). */
function isWorkerd(): boolean {
  return typeof (globalThis as { WebSocketPair?: unknown }).WebSocketPair === 'function';
}

/** What a service binding offers (a Fetcher): the socket opens through it instead of the network. */
export interface FetchBinding {
  fetch(input: string, init?: RequestInit): Promise<Response>;
}

/**
 * Opens the socket to `target`; with `via` (a service binding to an expert-shard Worker) the upgrade goes through
 * the binding, whatever the URL's host says.
 */
export async function openExpertSocket(target: BackendTarget, via?: FetchBinding): Promise<WebSocket> {
  const url = backendUrl(target.url, EXPERTS_WS_PATH);
  const timeout = new BackendTimeoutError(`no connection to ${url} within ${target.timeoutMs} ms`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ac = new AbortController();
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort(timeout);
      reject(timeout);
    }, target.timeoutMs);
  });
  const open = via ? openInWorkerd(url, target.token, ac.signal, via) : isWorkerd() ? openInWorkerd(url, target.token, ac.signal) : openInNode(url, target.token, ac.signal);
  try {
    return await Promise.race([open, expired]);
  } finally {
    clearTimeout(timer);
    // a socket that opens after the deadline is nobody's: close it
    open.then((ws) => ac.signal.aborted && ws.close(1000, 'timed out'), () => {});
  }
}

async function openInWorkerd(url: string, token: string, signal: AbortSignal, via: FetchBinding = { fetch: (u, i) => fetch(u, i) }): Promise<WebSocket> {
  let res: Response;
  try {
    res = await via.fetch(url, { headers: { Upgrade: 'websocket', Authorization: `Bearer ${token}` }, signal });
  } catch (e) {
    throw new BackendUnavailableError('unavailable', `cannot connect to ${url}: ${(e as Error)?.message ?? e}`, e);
  }
  const ws = (res as Response & { webSocket?: WebSocket & { accept(): void } }).webSocket;
  if (!ws) throw refused(url, res.status, await bodyHint(res));
  ws.accept();
  // with the standard binary type (newer compatibility dates) messages would arrive as Blobs
  ws.binaryType = 'arraybuffer';
  return ws;
}

function openInNode(url: string, token: string, signal: AbortSignal): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // Node's (undici's) WebSocket takes headers as an extension of the standard constructor.
    const Ctor = WebSocket as unknown as new (url: string, init: { headers: Record<string, string> }) => WebSocket;
    const ws = new Ctor(url.replace(/^http/i, 'ws'), { headers: { authorization: `Bearer ${token}` } });
    ws.binaryType = 'arraybuffer';
    const fail = (err: BackendError) => {
      cleanup();
      reject(err);
    };
    const onOpen = () => {
      cleanup();
      resolve(ws);
    };
    // undici does not expose the refusing status: ask once more over plain HTTP to tell a wrong token apart.
    const onError = () => {
      cleanup();
      fetch(url, { headers: { authorization: `Bearer ${token}` }, signal }).then(
        async (res) => reject(refused(url, res.status, await bodyHint(res))),
        () => reject(new BackendUnavailableError('unavailable', `cannot open a WebSocket to ${url}`)),
      );
    };
    const onAbort = () => {
      ws.close();
      fail(signal.reason as BackendError);
    };
    const cleanup = () => {
      ws.removeEventListener('open', onOpen);
      ws.removeEventListener('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    ws.addEventListener('open', onOpen);
    ws.addEventListener('error', onError);
    signal.addEventListener('abort', onAbort);
  });
}

/** A readable reason from a refusal: an error frame's message, or a short text body. */
async function bodyHint(res: Response): Promise<string> {
  try {
    const bytes = new Uint8Array(await res.arrayBuffer());
    try {
      const f = decodeFrame(bytes);
      return f.kind === 'error' ? `${f.code}: ${f.message}` : '';
    } catch {
      return /^(text\/|application\/json)/.test(res.headers.get('content-type') ?? '') ? new TextDecoder().decode(bytes).slice(0, 200) : '';
    }
  } catch {
    return '';
  }
}

function refused(url: string, status: number, body: string): BackendError {
  const detail = `${url} refused the WebSocket upgrade with HTTP ${status}${body ? ` (${body})` : ''}`;
  return new BackendUnavailableError(status === 401 || status === 403 ? 'unauthorized' : 'unavailable', detail);
}

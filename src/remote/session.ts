// One generation's connection to one GPU backend (replica): a WebSocket opened when the generation starts and
// closed when it ends (workerd ties a socket to the request that opened it). Each ExpertCall (src/protocol) goes
// out as a request frame and is matched to its reply by requestId; every call has a deadline. The first failure
// (closed socket, timeout, garbage, an error frame) is final: every pending and later call rejects with it, and the
// generation degrades. RemoteExperts is what the split executor sees: this session, or ShardedSession over several.
import type { BackendTarget } from '../engine/api';
import type { ExpertCall } from '../protocol/expert-call';
import { checkHeadResultFor, checkResultFor, decodeFrame, encodeHeadRequest, encodeRequest, WireError, type DecodedResult, type ExpertRequest, type HeadCall } from '../protocol/expert-wire';
import { openExpertSocket } from './connect';
import { BackendError, BackendTimeoutError, BackendUnavailableError } from './errors';

export interface RemoteReply {
  /** (nPairs, hidden): row i = expert(pair i)(x[token i]), unweighted */
  values: Float32Array;
  /** send -> reply, ms (of this runtime's clock) */
  roundTripMs: number;
}

/** What the split executor needs from a backend connection (the WebSocket session, or a test double). */
export interface RemoteExperts {
  call(c: ExpertCall): Promise<RemoteReply>;
  /** The error that ended the session, if one did. */
  readonly failure: BackendError | null;
  close(): void;
}

interface Pending {
  /** throws when a result does not answer this call */
  check(res: DecodedResult): void;
  sentAt: number;
  timer: ReturnType<typeof setTimeout>;
  resolve(r: RemoteReply): void;
  reject(e: BackendError): void;
}

export type SocketOpener = (target: BackendTarget) => Promise<WebSocket>;

export class ExpertSession implements RemoteExperts {
  private ws: WebSocket | null = null;
  private readonly opening: Promise<WebSocket | null>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  failure: BackendError | null = null;

  /** Starts connecting at once, so the handshake overlaps the trunk's work on the first tokens. */
  constructor(private readonly target: BackendTarget, private readonly modelTag: Uint8Array, open: SocketOpener = openExpertSocket) {
    this.opening = open(target).then(
      (ws) => {
        if (this.closed || this.failure) {
          ws.close(1000, 'generation ended');
          return null;
        }
        this.attach(ws);
        return ws;
      },
      (e: unknown) => {
        this.fail(asBackendError(e));
        return null;
      },
    );
  }

  call(c: ExpertCall): Promise<RemoteReply> {
    return this.request(`layer ${c.layer}`, (requestId) => {
      const req: ExpertRequest = { ...c, requestId, modelTag: this.modelTag, combine: false, resultDType: 'f32' };
      return { frame: encodeRequest(req), check: (res) => checkResultFor(req, res) };
    });
  }

  /** A head call (embedding rows or logits) to a shard that holds the head; the reply is (n, width). */
  callHead(h: HeadCall, width: number): Promise<RemoteReply> {
    const n = h.op === 'embed' ? h.tokens.length : h.op === 'sample' ? 1 : h.rows.length / h.hidden;
    return this.request(`head ${h.op}`, (requestId) => ({
      frame: encodeHeadRequest({ ...h, requestId, modelTag: this.modelTag }),
      check: (res) => checkHeadResultFor(requestId, this.modelTag, n, width, res),
    }));
  }

  private request(what: string, build: (requestId: number) => { frame: Uint8Array; check(res: DecodedResult): void }): Promise<RemoteReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new BackendUnavailableError('unavailable', 'session already closed'));
    const requestId = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const { frame, check } = build(requestId);
    return new Promise<RemoteReply>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(new BackendTimeoutError(`no reply to request ${requestId} (${what}) within ${this.target.timeoutMs} ms`)),
        this.target.timeoutMs,
      );
      this.pending.set(requestId, { check, sentAt: now(), timer, resolve, reject });
      if (this.ws) this.send(frame);
      else void this.opening.then((ws) => ws && this.send(frame));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll(this.failure ?? new BackendUnavailableError('unavailable', 'session closed'));
    if (this.ws) {
      try {
        this.ws.close(1000, 'generation ended');
      } catch {
        // already closing
      }
    }
  }

  private send(frame: Uint8Array): void {
    if (this.failure || this.closed) return;
    try {
      this.ws!.send(frame);
    } catch (e) {
      this.fail(new BackendUnavailableError('unavailable', `send failed: ${(e as Error)?.message ?? e}`, e));
    }
  }

  private attach(ws: WebSocket): void {
    this.ws = ws;
    ws.addEventListener('message', (ev: MessageEvent) => this.onMessage(ev.data));
    ws.addEventListener('close', (ev: CloseEvent) => {
      if (!this.closed) this.fail(new BackendUnavailableError('unavailable', `connection closed by the other end (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`));
    });
    ws.addEventListener('error', () => {
      if (!this.closed) this.fail(new BackendUnavailableError('unavailable', 'connection error'));
    });
  }

  private onMessage(data: unknown): void {
    if (this.failure || this.closed) return;
    if (typeof Blob !== 'undefined' && data instanceof Blob) {
      // binaryType could not be set: read it (replies are matched by id, so order does not matter)
      void data.arrayBuffer().then((b) => this.onMessage(b), (e) => this.fail(new BackendUnavailableError('protocol', `unreadable message: ${e}`)));
      return;
    }
    const bytes = binary(data);
    if (!bytes) {
      this.fail(new BackendUnavailableError('protocol', `a ${typeof data} message arrived where binary frames belong`));
      return;
    }
    try {
      const f = decodeFrame(bytes);
      const p = this.pending.get(f.requestId);
      if (f.kind === 'error') {
        const reason = f.status === 401 || f.status === 403 ? 'unauthorized' : 'backend_error';
        throw new BackendUnavailableError(reason, `error ${f.status} ${f.code}: ${f.message}`);
      }
      if (f.kind !== 'result') throw new WireError(400, 'bad_frame', `unexpected ${f.kind} frame`);
      if (!p) throw new WireError(400, 'bad_frame', `a result for request ${f.requestId}, which is not pending`);
      p.check(f);
      this.pending.delete(f.requestId);
      clearTimeout(p.timer);
      p.resolve({ values: f.values, roundTripMs: now() - p.sentAt });
    } catch (e) {
      this.fail(e instanceof BackendError ? e : new BackendUnavailableError('protocol', `bad reply: ${(e as Error)?.message ?? e}`, e));
    }
  }

  private fail(err: BackendError): void {
    if (this.failure) return;
    this.failure = err;
    this.rejectAll(err);
    if (this.ws && !this.closed) {
      try {
        this.ws.close(1000, err.reason); // scripts may only send 1000 or 3000-4999
      } catch {
        // already closing
      }
    }
  }

  private rejectAll(err: BackendError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}

// `instanceof ArrayBuffer` is false for buffers from another realm (workerd's test runner), so ask the tag.
function binary(data: unknown): Uint8Array | null {
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Object.prototype.toString.call(data) === '[object ArrayBuffer]') return new Uint8Array(data as ArrayBuffer);
  return null;
}

function asBackendError(e: unknown): BackendError {
  return e instanceof BackendError ? e : new BackendUnavailableError('unavailable', String((e as Error)?.message ?? e), e);
}

// workerd's clock moves only across I/O, which is exactly what a round trip is.
function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

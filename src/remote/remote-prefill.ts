// The Worker's side of the prefill call: the prompt's token ids to the backend's POST /v1/prefill, its KV frames
// placed into the generation's own cache (allocated, and counted by admission, before the call) as they arrive, one
// frame buffered at a time. Every frame is checked against what must come next (request id, model tag, layer,
// positions, KV type, width, digest); anything else, a stream that ends early, an error frame or no progress within
// the backend timeout is a BackendError, and the caller prefills locally instead: nothing half-received is used.
import type { BackendTarget } from '../engine/api';
import type { Sequence } from '../engine/forward';
import { writeKvRows } from '../engine/kv-transfer';
import { HEADER_BYTES, sameTag, WireError } from '../protocol/expert-wire';
import { decodePrefillFrame, encodePrefillRequest, MAX_KV_PAYLOAD_BYTES, type DecodedPrefillFrame } from '../protocol/prefill-wire';
import { backendUrl, type FetchBinding } from './connect';
import { BackendError, BackendTimeoutError, BackendUnavailableError } from './errors';
import type { Heap } from '../kernels/heap';

export const PREFILL_PATH = '/v1/prefill';

export interface RemotePrefillResult {
  /** the last position's residual row (before the final norm) */
  readonly hidden: Float32Array;
  /** the prompt's router picks, counts[layer][expert] */
  readonly counts: readonly (readonly number[])[];
  /** bytes received (every frame) */
  readonly bytes: number;
  /** request sent -> last frame placed, ms */
  readonly ms: number;
}

/**
 * Prefills `tokens` into the empty `seq` on the backend. On success seq.length is tokens.length; on failure it stays
 * 0 and a BackendError says why (the cache may hold partial rows, which a local prefill overwrites).
 */
export async function remotePrefill(heap: Heap, seq: Sequence, target: BackendTarget, modelTag: Uint8Array, tokens: readonly number[], via?: FetchBinding): Promise<RemotePrefillResult> {
  if (seq.length !== 0) throw new RangeError('remotePrefill fills an empty sequence');
  const t0 = Date.now();
  const url = backendUrl(target.url, PREFILL_PATH);
  const requestId = (Math.random() * 0xffffffff) >>> 0;
  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // no progress (connection, then each frame) within the backend timeout: give up on the call
  const deadline = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ac.abort(new BackendTimeoutError(`${url}: no progress within ${target.timeoutMs} ms`)), target.timeoutMs);
  };
  deadline();
  const f = via ?? { fetch: (u: string, i?: RequestInit) => fetch(u, i) };
  try {
    const body = encodePrefillRequest({ requestId, modelTag, kvType: seq.kvType, tokens }).buffer as ArrayBuffer;
    const send = () => f.fetch(url, { method: 'POST', headers: { authorization: `Bearer ${target.token}`, 'content-type': 'application/octet-stream' }, body, signal: ac.signal });
    let res: Response;
    try {
      // once more when the request never got an answer: a kept-alive connection the server closed as it was reused
      // fails that way, and a prefill call changes nothing on the backend, so sending it again is safe
      res = await send().catch((e: unknown) => {
        if (ac.signal.aborted) throw e;
        return send();
      });
    } catch (e) {
      throw asBackendError(e, ac.signal, `cannot reach ${url}`);
    }
    if (res.status !== 200) throw await refusal(url, res);
    if (!res.body) throw new BackendUnavailableError('protocol', `${url} answered without a body`);
    const reader = new FrameReader(res.body.getReader());
    const place = new Placement(heap, seq, tokens.length, requestId, modelTag, url);
    try {
      for (;;) {
        deadline();
        const bytes = await reader.next();
        if (bytes === null) throw new BackendUnavailableError('protocol', `${url}: the KV stream ended ${place.where()}`);
        const frame = await decodePrefillFrame(bytes).catch((e: unknown) => {
          throw new BackendUnavailableError('protocol', `${url}: ${(e as Error).message}`, e);
        });
        if (frame.kind === 'error') throw errorFrameError(url, frame.status, `${frame.code}: ${frame.message}`);
        const done = place.take(frame);
        if (done) {
          seq.length = tokens.length;
          return { ...done, bytes: reader.bytes, ms: Date.now() - t0 };
        }
      }
    } catch (e) {
      throw asBackendError(e, ac.signal, `${url}: the KV stream failed`);
    } finally {
      reader.cancel();
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A refused call: the error frame's reason and message when the body is one, else the HTTP status alone. */
async function refusal(url: string, res: Response): Promise<BackendError> {
  const bytes = new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
  const status = res.status;
  try {
    const f = await decodePrefillFrame(bytes);
    if (f.kind === 'error') return errorFrameError(url, f.status, `${f.code}: ${f.message}`);
  } catch {
    // not a frame: a proxy's or gateway's page
  }
  return errorFrameError(url, status, `HTTP ${status}`);
}

function errorFrameError(url: string, status: number, what: string): BackendError {
  const reason = status === 401 || status === 403 ? 'unauthorized' : status === 404 || status === 502 || status === 503 ? 'unavailable' : 'backend_error';
  return new BackendUnavailableError(reason, `${url} answered ${what}`);
}

/** What must come next, checked frame by frame, and the KV rows placed into the cache. */
class Placement {
  private layer = 0;
  private pos = 0;
  private readonly numLayers: number;
  private readonly kvDim: number;

  constructor(private readonly heap: Heap, private readonly seq: Sequence, private readonly n: number, private readonly requestId: number, private readonly tag: Uint8Array, private readonly url: string) {
    const a = seq.weights.arch;
    this.numLayers = a.numLayers;
    this.kvDim = a.numKvHeads * a.headDim;
  }

  where(): string {
    return this.layer >= this.numLayers ? 'before the prefilled frame' : `at layer ${this.layer}, position ${this.pos} of ${this.n}`;
  }

  /** Places a KV frame (null), or returns the final frame's hidden row and routing counts. */
  take(f: Exclude<DecodedPrefillFrame, { kind: 'error' }>): Pick<RemotePrefillResult, 'hidden' | 'counts'> | null {
    const bad = (what: string) => new BackendUnavailableError('protocol', `${this.url}: ${what} ${this.where()}`);
    if (f.requestId !== this.requestId) throw bad(`a frame for request ${f.requestId}, not ${this.requestId},`);
    if (!sameTag(f.modelTag, this.tag)) throw bad('a frame for another model');
    if (f.kind === 'prefill') throw bad('a prefill request frame');
    if (f.kind === 'prefilled') {
      if (this.layer < this.numLayers) throw bad('the prefilled frame came');
      if (f.positions !== this.n) throw bad(`the prefilled frame says ${f.positions} positions, not ${this.n},`);
      const a = this.seq.weights.arch;
      if (f.hidden.length !== a.hiddenSize) throw bad(`a hidden row of ${f.hidden.length}`);
      if (f.counts.length !== a.numLayers || f.counts.some((r) => r.length !== a.numExperts)) throw bad(`routing counts of ${f.counts.length} layers`);
      const picks = this.n * a.topK; // every layer's router picks topK experts for every token
      if (f.counts.some((r) => r.reduce((s, c) => s + c, 0) !== picks)) throw bad(`routing counts that do not add up to ${picks} picks a layer`);
      return { hidden: f.hidden, counts: f.counts };
    }
    if (this.layer >= this.numLayers) throw bad(`KV rows of layer ${f.layer} came`);
    if (f.layer !== this.layer || f.pos0 !== this.pos) throw bad(`KV rows of layer ${f.layer}, position ${f.pos0} came`);
    if (f.kvType !== this.seq.kvType || f.kvDim !== this.kvDim) throw bad(`${f.kvType} rows of ${f.kvDim} (this cache: ${this.seq.kvType} of ${this.kvDim}) came`);
    if (f.pos0 + f.nPos > this.n) throw bad(`rows up to position ${f.pos0 + f.nPos - 1} came`);
    writeKvRows(this.heap, this.seq, f.layer, f.pos0, f.nPos, f.rows);
    this.pos += f.nPos;
    if (this.pos === this.n) {
      this.layer++;
      this.pos = 0;
    }
    return null;
  }
}

/** Whole frames out of a byte stream, one at a time; a frame announcing more than a KV frame may carry is refused unread. */
class FrameReader {
  private buf = new Uint8Array(0);
  private have = 0;
  bytes = 0;

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** The next frame (a copy it owns), or null at a clean end of the stream. Throws on an end inside a frame. */
  async next(): Promise<Uint8Array | null> {
    if (!(await this.fill(HEADER_BYTES))) return null;
    const payload = new DataView(this.buf.buffer, this.buf.byteOffset, this.have).getUint32(20, true);
    if (payload > MAX_KV_PAYLOAD_BYTES) throw new WireError(400, 'bad_frame', `a frame of ${payload} payload bytes is over the ${MAX_KV_PAYLOAD_BYTES} a KV frame may carry`);
    const total = HEADER_BYTES + payload;
    if (!(await this.fill(total))) throw new WireError(400, 'bad_frame', `the stream ended inside a frame (${this.have} of ${total} bytes)`);
    const frame = this.buf.slice(0, total);
    this.buf.copyWithin(0, total, this.have);
    this.have -= total;
    return frame;
  }

  /** Reads until `n` bytes are buffered; false when the stream ends with none buffered (a clean end), throws inside. */
  private async fill(n: number): Promise<boolean> {
    while (this.have < n) {
      const { done, value } = await this.reader.read();
      if (done) {
        if (this.have === 0) return false;
        throw new WireError(400, 'bad_frame', `the stream ended inside a frame (${this.have} of ${n} bytes)`);
      }
      this.bytes += value.length;
      if (this.have + value.length > this.buf.length) {
        const grown = new Uint8Array(Math.max(2 * this.buf.length, this.have + value.length, 64 << 10));
        grown.set(this.buf.subarray(0, this.have));
        this.buf = grown;
      }
      this.buf.set(value, this.have);
      this.have += value.length;
    }
    return true;
  }

  cancel(): void {
    this.reader.cancel().catch(() => {});
  }
}

function asBackendError(e: unknown, signal: AbortSignal, what: string): BackendError {
  if (signal.aborted && signal.reason instanceof BackendError) return signal.reason;
  if (e instanceof BackendError) return e;
  if (e instanceof WireError) return new BackendUnavailableError('protocol', `${what}: ${e.message}`, e);
  return new BackendUnavailableError('unavailable', `${what}: ${(e as Error)?.message ?? e}`, e);
}

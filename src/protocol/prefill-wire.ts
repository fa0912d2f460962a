// The prefill call between the Worker and the GPU backend: prompt token ids in; the KV cache of every layer, in
// the Worker's KV-cache format, and the last position's hidden state out, as a stream of frames. Same 24-byte
// header as the expert frames (src/protocol/expert-wire.ts: magic, version 1, kind, flags 0, requestId, model tag,
// payloadBytes); strict decoding; one definition for both sides.
//
// Prefill request (kind 5), payload: kvType u8 (0 f32, 1 f16, 2 q8_0, 3 q4_0), 3 reserved bytes = 0, nTok u32,
//   then nTok token ids u32. Answered by a stream (application/octet-stream) of frames, back to back:
// KV (kind 6), one per (layer, run of positions), layers in order, each layer's positions 0..nTok-1 in order:
//   layer u16, kvType u8, reserved u8 = 0, pos0 u32, nPos u32, kvDim u32, sha256 32 bytes (of what follows), then
//   the rows of K then of V exactly as a cache holds them in the kernel heap (src/format/quant.ts's layout): the
//   nPos * kvDim values (f32, f16) or quants (q8_0, q4_0), then for quantized types their f32 scales (one a block).
// Prefilled (kind 7), last: hidden u32, positions u32 (= nTok), layers u32, experts u32, then the last position's
//   residual row (hidden f32, before the final norm: the Worker finishes the step with its own norm and head), then
//   the prompt's routing: layers x experts u32, how often each layer's router picked each expert (top-k slots), so
//   the Worker's routing statistics and profile pick see the prompt as if it had run there.
// An error frame (kind 3) may come instead of any of them and ends the stream.
import { DTYPES, isQuantized, memoryBytes, type DType } from '../format/quant';
import { decodeFrame, frame, FrameKind, HEADER_BYTES, readFrameHead, WireError, type DecodedError } from './expert-wire';

export const PREFILL_HEAD_BYTES = 8;
export const KV_HEAD_BYTES = 16 + 32;
export const PREFILLED_HEAD_BYTES = 16;
/**
 * Largest KV frame payload the backend sends and the Worker buffers (one frame in memory at a time): small enough
 * to sit beside a front's heap, big enough that a granite layer is a few frames.
 */
export const MAX_KV_PAYLOAD_BYTES = 1 << 20;

export interface PrefillRequest {
  readonly requestId: number;
  readonly modelTag: Uint8Array;
  readonly kvType: DType;
  readonly tokens: ArrayLike<number>;
}

/** One run of a layer's cache rows: `rows` = K's bytes then V's, each memoryBytes(kvType, nPos * kvDim) long. */
export interface KvChunk {
  readonly layer: number;
  readonly kvType: DType;
  readonly pos0: number;
  readonly nPos: number;
  readonly kvDim: number;
  readonly rows: Uint8Array;
}

export interface Prefilled {
  readonly positions: number;
  /** the last position's residual row, before the final norm */
  readonly hidden: Float32Array;
  /** the prompt's router picks: counts[layer][expert] */
  readonly counts: readonly (readonly number[])[];
}

export type DecodedPrefillFrame =
  | ({ readonly kind: 'prefill' } & PrefillRequest)
  | ({ readonly kind: 'kv'; readonly requestId: number; readonly modelTag: Uint8Array } & KvChunk)
  | ({ readonly kind: 'prefilled'; readonly requestId: number; readonly modelTag: Uint8Array } & Prefilled)
  | DecodedError;

const bad = (message: string, requestId: number | null = null) => new WireError(400, 'bad_frame', message, requestId);

/** Bytes of one K (or V) run of nPos rows of kvDim. */
export function kvRunBytes(kvType: DType, nPos: number, kvDim: number): number {
  return memoryBytes(kvType, nPos * kvDim);
}

/** Positions per KV frame for rows of kvDim: as many as fit MAX_KV_PAYLOAD_BYTES (at least one). */
export function positionsPerKvFrame(kvType: DType, kvDim: number): number {
  return Math.max(1, Math.floor((MAX_KV_PAYLOAD_BYTES - KV_HEAD_BYTES) / (2 * kvRunBytes(kvType, 1, kvDim))));
}

export function encodePrefillRequest(r: PrefillRequest): Uint8Array {
  const { out, dv } = frame('prefill', r, 0, PREFILL_HEAD_BYTES + 4 * r.tokens.length);
  const o = HEADER_BYTES;
  dv.setUint8(o, DTYPES.indexOf(r.kvType));
  dv.setUint32(o + 4, r.tokens.length, true);
  for (let i = 0; i < r.tokens.length; i++) dv.setUint32(o + PREFILL_HEAD_BYTES + 4 * i, r.tokens[i], true);
  return out;
}

export async function encodeKvFrame(h: { requestId: number; modelTag: Uint8Array }, c: KvChunk): Promise<Uint8Array> {
  if (c.rows.length !== 2 * kvRunBytes(c.kvType, c.nPos, c.kvDim)) throw new RangeError(`encodeKvFrame: ${c.rows.length} bytes are not K and V of ${c.nPos} rows`);
  const { out, dv } = frame('kv', h, 0, KV_HEAD_BYTES + c.rows.length);
  const o = HEADER_BYTES;
  dv.setUint16(o, c.layer, true);
  dv.setUint8(o + 2, DTYPES.indexOf(c.kvType));
  dv.setUint32(o + 4, c.pos0, true);
  dv.setUint32(o + 8, c.nPos, true);
  dv.setUint32(o + 12, c.kvDim, true);
  out.set(c.rows, o + KV_HEAD_BYTES);
  out.set(new Uint8Array(await crypto.subtle.digest('SHA-256', out.subarray(o + KV_HEAD_BYTES) as Uint8Array<ArrayBuffer>)), o + 16);
  return out;
}

export function encodePrefilled(h: { requestId: number; modelTag: Uint8Array }, p: Prefilled): Uint8Array {
  const layers = p.counts.length;
  const experts = p.counts[0]?.length ?? 0;
  if (p.counts.some((r) => r.length !== experts)) throw new RangeError('encodePrefilled: routing counts are not a layers x experts table');
  const { out, dv } = frame('prefilled', h, 0, PREFILLED_HEAD_BYTES + 4 * p.hidden.length + 4 * layers * experts);
  dv.setUint32(HEADER_BYTES, p.hidden.length, true);
  dv.setUint32(HEADER_BYTES + 4, p.positions, true);
  dv.setUint32(HEADER_BYTES + 8, layers, true);
  dv.setUint32(HEADER_BYTES + 12, experts, true);
  let o = HEADER_BYTES + PREFILLED_HEAD_BYTES;
  out.set(new Uint8Array(p.hidden.buffer, p.hidden.byteOffset, p.hidden.byteLength), o);
  o += p.hidden.byteLength;
  for (const row of p.counts) for (const c of row) (dv.setUint32(o, c, true), (o += 4));
  return out;
}

/**
 * Decodes one frame of the prefill call (request, KV, prefilled or error); throws WireError on anything malformed,
 * a KV frame whose rows do not match its digest included. The rows of a KV frame are a view into `bytes`.
 */
export async function decodePrefillFrame(bytes: Uint8Array): Promise<DecodedPrefillFrame> {
  const h = readFrameHead(bytes);
  const id = h.requestId;
  if (h.kind === FrameKind.error) return decodeFrame(bytes) as DecodedError;
  if (h.combine) throw bad('prefill frames carry no flags', id);
  const p = new DataView(bytes.buffer, bytes.byteOffset + HEADER_BYTES, h.payloadBytes);
  const body = bytes.subarray(HEADER_BYTES);
  const head = { requestId: id, modelTag: h.modelTag };
  const dtype = (code: number): DType => DTYPES[code] ?? (() => { throw bad(`unknown KV cache type code ${code}`, id); })();
  switch (h.kind) {
    case FrameKind.prefill: {
      if (h.payloadBytes < PREFILL_HEAD_BYTES) throw bad('prefill request payload is shorter than its head', id);
      const kvType = dtype(p.getUint8(0));
      if (p.getUint8(1) | p.getUint8(2) | p.getUint8(3)) throw bad('prefill request reserved bytes must be 0', id);
      const nTok = p.getUint32(4, true);
      if (nTok === 0) throw bad('a prefill request needs at least one token', id);
      if (h.payloadBytes !== PREFILL_HEAD_BYTES + 4 * nTok) throw bad(`prefill request of ${nTok} tokens has ${h.payloadBytes} payload bytes`, id);
      const tokens = new Uint32Array(nTok);
      for (let i = 0; i < nTok; i++) tokens[i] = p.getUint32(PREFILL_HEAD_BYTES + 4 * i, true);
      return { kind: 'prefill', ...head, kvType, tokens };
    }
    case FrameKind.kv: {
      if (h.payloadBytes < KV_HEAD_BYTES) throw bad('KV frame payload is shorter than its head', id);
      const layer = p.getUint16(0, true);
      const kvType = dtype(p.getUint8(2));
      if (p.getUint8(3)) throw bad('KV frame reserved byte must be 0', id);
      const pos0 = p.getUint32(4, true);
      const nPos = p.getUint32(8, true);
      const kvDim = p.getUint32(12, true);
      if (nPos === 0 || kvDim === 0 || (isQuantized(kvType) && kvDim % 32 !== 0)) throw bad(`KV frame of ${nPos} rows of ${kvDim} ${kvType} is not a run of cache rows`, id);
      const rows = body.subarray(KV_HEAD_BYTES);
      if (rows.length !== 2 * kvRunBytes(kvType, nPos, kvDim)) throw bad(`KV frame of ${nPos} rows of ${kvDim} ${kvType} carries ${rows.length} bytes`, id);
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', rows as Uint8Array<ArrayBuffer>));
      if (!sameBytes(digest, body.subarray(16, KV_HEAD_BYTES))) throw bad(`KV frame of layer ${layer}, positions ${pos0}-${pos0 + nPos - 1}: rows do not match their SHA-256`, id);
      return { kind: 'kv', ...head, layer, kvType, pos0, nPos, kvDim, rows };
    }
    case FrameKind.prefilled: {
      if (h.payloadBytes < PREFILLED_HEAD_BYTES) throw bad('prefilled frame payload is shorter than its head', id);
      const hidden = p.getUint32(0, true);
      const positions = p.getUint32(4, true);
      const layers = p.getUint32(8, true);
      const experts = p.getUint32(12, true);
      if (h.payloadBytes !== PREFILLED_HEAD_BYTES + 4 * hidden + 4 * layers * experts) {
        throw bad(`prefilled frame of a ${hidden}-wide row and ${layers} x ${experts} counts has ${h.payloadBytes} payload bytes`, id);
      }
      const row = new Float32Array(hidden);
      new Uint8Array(row.buffer).set(body.subarray(PREFILLED_HEAD_BYTES, PREFILLED_HEAD_BYTES + 4 * hidden));
      for (let i = 0; i < hidden; i++) if (!Number.isFinite(row[i])) throw bad('prefilled frame carries a non-finite hidden value', id);
      const at = PREFILLED_HEAD_BYTES + 4 * hidden;
      const counts = Array.from({ length: layers }, (_, l) => Array.from({ length: experts }, (_, e) => p.getUint32(at + 4 * (l * experts + e), true)));
      return { kind: 'prefilled', ...head, positions, hidden: row, counts };
    }
    default:
      throw bad(`frame kind ${h.kind} is not part of the prefill call`, id);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

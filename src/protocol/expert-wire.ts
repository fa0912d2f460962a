// Wire protocol v1 between the Worker and the GPU backend: binary frames for remote expert calls (request,
// result, error), with strict decoding. Runtime-agnostic (Worker, Node backend, tests); the one definition.
//
// Every frame, little-endian: a 24-byte header, then `payloadBytes` of payload (a frame is exactly that long).
//   magic u32 = 0x58454F4D (the bytes "MOEX")   version u8 = 1   kind u8 (1 request, 2 result, 3 error)
//   flags u16 (bit 0 COMBINE; other bits must be 0)   requestId u32
//   modelTag 8 bytes (first 8 bytes of SHA-256 of the model's manifest.json)   payloadBytes u32
// Request payload:
//   layer u16, actDType u8 (0 f32, 1 f16, 2 q8_0), resultDType u8 (0 f32, 1 f16), hidden u32, nTok u32, nPairs u32,
//   pairs: nPairs x { token u32, expert u16, reserved u16 = 0, weight f32 (finite) },
//   activations x (nTok, hidden) in actDType; q8_0 = all nTok*hidden int8 quants, then nTok*hidden/32 f16 scales
//   (src/format/quant.ts's shard layout; hidden must be a multiple of 32 so no block straddles two tokens).
// Result payload:
//   resultDType u8, 3 reserved bytes = 0, count u32, hidden u32, then count x hidden values in resultDType.
//   Without COMBINE: count = nPairs, row i = expert(pairs[i].expert)(x[pairs[i].token]), unweighted, request order.
//   With COMBINE: count = nTok, row t = sum over the pairs of token t, in request order, of weight * expert(x[t])
//   (f32 accumulation from 0); tokens without pairs get zero rows.
// Error payload: status u16 (HTTP-like), code (u16 length + utf8), message (u16 length + utf8).
// Head payload (the model's token embedding / output head, held by an expert shard instead of the front):
//   op u8 (0 embed, 1 logits, 2 sample), 3 reserved bytes = 0, n u32, hidden u32, then embed: n token ids u32;
//   logits: n x hidden f32 rows (after the final norm); sample: n = 1 such row, then temperature f64, topP f64,
//   topK u32, u f64 (the front's uniform draw; f64 so the shard samples with the front's very numbers). Answered by a result (f32) of count n and width hidden (embed:
//   the embedding rows as the kernels read them), vocab (logits: output @ row, unscaled) or 1 + hidden (sample:
//   the token the sampler picks from the scaled logits with that draw, exact in f32, then its embedding row).
import { MoeError, type ErrorType } from '../common/errors';
import { MODEL_TAG_BYTES } from '../format/digest';
import { f16ToF32, f32ToF16, QK } from '../format/quant';
import type { ActDType, Activations } from './activations';
import type { ExpertCall } from './expert-call';

export const PROTOCOL_VERSION = 1;
export const MAGIC = 0x58454f4d; // reads "MOEX" in a hex dump (the contract's 0x584F454D would read "MEOX")
export const HEADER_BYTES = 24;
export const REQUEST_HEAD_BYTES = 16;
export const PAIR_BYTES = 12;
export const RESULT_HEAD_BYTES = 12;
/** Largest payload either side accepts (workerd closes WebSockets on messages over 32 MiB). */
export const MAX_PAYLOAD_BYTES = 32 * 1024 * 1024 - HEADER_BYTES;
export const FLAG_COMBINE = 1;

/** Kinds 5-7 are the prefill call's (src/protocol/prefill-wire.ts), which shares this header. */
export const FrameKind = { request: 1, result: 2, error: 3, head: 4, prefill: 5, kv: 6, prefilled: 7 } as const;
export const HEAD_HEAD_BYTES = 12;
export const SAMPLE_BYTES = 28;
export type FrameKindName = keyof typeof FrameKind;

export type ResultDType = 'f32' | 'f16';
const ACT_CODES: readonly ActDType[] = ['f32', 'f16', 'q8_0'];
const RESULT_CODES: readonly ResultDType[] = ['f32', 'f16'];

interface FrameHeader {
  readonly requestId: number;
  readonly modelTag: Uint8Array; // 8 bytes
}

/** A request frame: the header fields and one expert call (src/protocol/expert-call.ts). */
export interface ExpertRequest extends FrameHeader, ExpertCall {
  readonly combine: boolean;
  readonly resultDType: ResultDType;
}

/** A request as decoded: pairs in typed arrays. */
export interface DecodedRequest extends ExpertRequest {
  readonly kind: 'request';
  readonly tokens: Uint32Array;
  readonly experts: Uint16Array;
  readonly weights: Float32Array;
}

export interface ExpertResult extends FrameHeader {
  readonly combine: boolean;
  readonly dtype: ResultDType;
  readonly count: number;
  readonly hidden: number;
  /** (count, hidden); f16 results are widened to f32 on decode and rounded to f16 on encode */
  readonly values: Float32Array;
}

export interface DecodedResult extends ExpertResult {
  readonly kind: 'result';
}

export interface ExpertError extends FrameHeader {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

export interface DecodedError extends ExpertError {
  readonly kind: 'error';
}

/** A head call: embedding rows for tokens, or logits for final hidden rows. */
export interface SampleParams {
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  /** the uniform draw in [0, 1) the sampler consumes */
  readonly u: number;
}

export type HeadCall =
  | { readonly op: 'embed'; readonly hidden: number; readonly tokens: ArrayLike<number> }
  | { readonly op: 'logits'; readonly hidden: number; readonly rows: Float32Array }
  | { readonly op: 'sample'; readonly hidden: number; readonly rows: Float32Array; readonly sampling: SampleParams };

export type HeadRequest = FrameHeader & HeadCall;

export type DecodedHead = HeadRequest & { readonly kind: 'head'; readonly n: number };

export type DecodedFrame = DecodedRequest | DecodedResult | DecodedError | DecodedHead;

/** A frame that breaks the protocol (or a call the backend refuses); `requestId` when the header was readable. */
export class WireError extends MoeError {
  constructor(status: number, code: string, message: string, readonly requestId: number | null = null) {
    super(message, { status, code, type: errorType(status) });
  }
}

function errorType(status: number): ErrorType {
  if (status === 401) return 'authentication_error';
  if (status === 404) return 'not_found_error';
  return status < 500 ? 'invalid_request_error' : 'server_error';
}

const bad = (message: string, requestId: number | null = null): WireError => new WireError(400, 'bad_frame', message, requestId);

// ---------------------------------------------------------------- encoding

/** Bytes of x (nTok, hidden) in `dtype`; NaN when the shape cannot be carried in it. */
export function activationBytes(dtype: ActDType, nTok: number, hidden: number): number {
  const n = nTok * hidden;
  if (dtype === 'f32') return n * 4;
  if (dtype === 'f16') return n * 2;
  return hidden % QK === 0 ? n + (n / QK) * 2 : NaN;
}

export function encodeRequest(req: ExpertRequest): Uint8Array {
  const nPairs = req.tokens.length;
  if (req.experts.length !== nPairs || req.weights.length !== nPairs) throw new RangeError('encodeRequest: tokens, experts and weights differ in length');
  const act = req.activations;
  const actBytes = activationBytes(act.dtype, req.nTok, req.hidden);
  const n = req.nTok * req.hidden;
  const have = act.dtype === 'q8_0' ? act.qs.length === n && act.d.length === n / QK : act.data.length === n;
  if (!have || !Number.isFinite(actBytes)) throw new RangeError(`encodeRequest: activations do not hold (${req.nTok}, ${req.hidden}) ${act.dtype}`);
  const payload = REQUEST_HEAD_BYTES + nPairs * PAIR_BYTES + actBytes;
  const { out, dv } = frame('request', req, req.combine ? FLAG_COMBINE : 0, payload);
  let o = HEADER_BYTES;
  dv.setUint16(o, req.layer, true);
  dv.setUint8(o + 2, ACT_CODES.indexOf(act.dtype));
  dv.setUint8(o + 3, RESULT_CODES.indexOf(req.resultDType));
  dv.setUint32(o + 4, req.hidden, true);
  dv.setUint32(o + 8, req.nTok, true);
  dv.setUint32(o + 12, nPairs, true);
  o += REQUEST_HEAD_BYTES;
  for (let i = 0; i < nPairs; i++, o += PAIR_BYTES) {
    dv.setUint32(o, req.tokens[i], true);
    dv.setUint16(o + 4, req.experts[i], true);
    dv.setFloat32(o + 8, req.weights[i], true);
  }
  if (act.dtype === 'q8_0') {
    out.set(new Uint8Array(act.qs.buffer, act.qs.byteOffset, n), o);
    putU16s(dv, o + n, act.d);
  } else if (act.dtype === 'f16') putU16s(dv, o, act.data);
  else putF32s(out, o, act.data);
  return out;
}

export function encodeResult(res: ExpertResult): Uint8Array {
  const n = res.count * res.hidden;
  if (res.values.length !== n) throw new RangeError(`encodeResult: ${res.values.length} values for (${res.count}, ${res.hidden})`);
  const payload = RESULT_HEAD_BYTES + n * (res.dtype === 'f32' ? 4 : 2);
  const { out, dv } = frame('result', res, res.combine ? FLAG_COMBINE : 0, payload);
  const o = HEADER_BYTES;
  dv.setUint8(o, RESULT_CODES.indexOf(res.dtype));
  dv.setUint32(o + 4, res.count, true);
  dv.setUint32(o + 8, res.hidden, true);
  if (res.dtype === 'f32') putF32s(out, o + RESULT_HEAD_BYTES, res.values);
  else for (let i = 0; i < n; i++) dv.setUint16(o + RESULT_HEAD_BYTES + 2 * i, f32ToF16(res.values[i]), true);
  return out;
}

export function encodeHeadRequest(r: HeadRequest): Uint8Array {
  const n = r.op === 'embed' ? r.tokens.length : r.rows.length / r.hidden;
  if (!Number.isInteger(n)) throw new RangeError(`encodeHeadRequest: ${r.op === 'logits' ? r.rows.length : 0} values are not rows of ${r.hidden}`);
  if (r.op === 'sample' && n !== 1) throw new RangeError('encodeHeadRequest: sample takes one row');
  const body = r.op === 'embed' ? n * 4 : n * r.hidden * 4;
  const { out, dv } = frame('head', r, 0, HEAD_HEAD_BYTES + body + (r.op === 'sample' ? SAMPLE_BYTES : 0));
  const o = HEADER_BYTES;
  dv.setUint8(o, HEAD_OPS.indexOf(r.op));
  dv.setUint32(o + 4, n, true);
  dv.setUint32(o + 8, r.hidden, true);
  if (r.op === 'embed') for (let i = 0; i < n; i++) dv.setUint32(o + HEAD_HEAD_BYTES + 4 * i, r.tokens[i], true);
  else putF32s(out, o + HEAD_HEAD_BYTES, r.rows);
  if (r.op === 'sample') {
    const at = o + HEAD_HEAD_BYTES + body;
    dv.setFloat64(at, r.sampling.temperature, true);
    dv.setFloat64(at + 8, r.sampling.topP, true);
    dv.setUint32(at + 16, r.sampling.topK, true);
    dv.setFloat64(at + 20, r.sampling.u, true);
  }
  return out;
}

/**
 * An f32 result frame whose values are still to be written: `values` views the frame's payload (4-byte aligned at
 * offset 36), so a server writes each row once, straight where it travels, with no result array beside the frame.
 */
export function allocResult(h: Omit<ExpertResult, 'values' | 'dtype'>): { frame: Uint8Array; values: Float32Array } {
  const n = h.count * h.hidden;
  const { out, dv } = frame('result', h, h.combine ? FLAG_COMBINE : 0, RESULT_HEAD_BYTES + n * 4);
  dv.setUint8(HEADER_BYTES, RESULT_CODES.indexOf('f32'));
  dv.setUint32(HEADER_BYTES + 4, h.count, true);
  dv.setUint32(HEADER_BYTES + 8, h.hidden, true);
  return { frame: out, values: new Float32Array(out.buffer, HEADER_BYTES + RESULT_HEAD_BYTES, n) };
}

const utf8 = new TextEncoder();

export function encodeError(e: ExpertError): Uint8Array {
  const code = clipUtf8(e.code, 256);
  const message = clipUtf8(e.message, 4096);
  const { out, dv } = frame('error', e, 0, 2 + 2 + code.length + 2 + message.length);
  let o = HEADER_BYTES;
  dv.setUint16(o, e.status, true);
  dv.setUint16(o + 2, code.length, true);
  out.set(code, o + 4);
  o += 4 + code.length;
  dv.setUint16(o, message.length, true);
  out.set(message, o + 2);
  return out;
}

/** An error frame for `err` (WireError keeps its status and code; anything else is a 500). */
export function errorFrameFor(err: unknown, modelTag: Uint8Array, requestId?: number): Uint8Array {
  const w = err instanceof WireError ? err : new WireError(500, 'internal', err instanceof Error ? err.message : String(err));
  return encodeError({ requestId: requestId ?? w.requestId ?? 0, modelTag, status: w.status, code: w.code, message: w.message });
}

/** A frame of `payloadBytes` with its header written, to be filled in by the caller (every kind's encoder). */
export function frame(kind: FrameKindName, h: FrameHeader, flags: number, payloadBytes: number): { out: Uint8Array; dv: DataView } {
  if (payloadBytes > MAX_PAYLOAD_BYTES) throw new RangeError(`frame payload of ${payloadBytes} bytes exceeds ${MAX_PAYLOAD_BYTES}`);
  if (h.modelTag.length !== MODEL_TAG_BYTES) throw new RangeError(`model tag must be ${MODEL_TAG_BYTES} bytes`);
  const out = new Uint8Array(HEADER_BYTES + payloadBytes);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint8(4, PROTOCOL_VERSION);
  dv.setUint8(5, FrameKind[kind]);
  dv.setUint16(6, flags, true);
  dv.setUint32(8, h.requestId, true);
  out.set(h.modelTag, 12);
  dv.setUint32(20, payloadBytes, true);
  return { out, dv };
}

function putU16s(dv: DataView, o: number, a: Uint16Array): void {
  for (let i = 0; i < a.length; i++) dv.setUint16(o + 2 * i, a[i], true);
}

// f32 arrays are copied as bytes (every runtime we target is little-endian, checked below).
function putF32s(out: Uint8Array, o: number, a: Float32Array): void {
  out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), o);
}

function clipUtf8(s: string, max: number): Uint8Array {
  const b = utf8.encode(s);
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--; // do not cut a code point in half
  return b.subarray(0, end);
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('expert-wire: a big-endian runtime is not supported');

// ---------------------------------------------------------------- decoding

/** A frame's checked header: magic, version, length and flags (every kind's decoder starts here). */
export interface FrameHead {
  readonly requestId: number;
  readonly modelTag: Uint8Array;
  readonly kind: number;
  readonly combine: boolean;
  readonly payloadBytes: number;
}

/** Reads and checks a frame's header; throws WireError (400 bad_frame or unsupported_version). */
export function readFrameHead(bytes: Uint8Array): FrameHead {
  if (!(bytes instanceof Uint8Array)) throw bad('frame is not binary');
  if (bytes.length < HEADER_BYTES) throw bad(`frame of ${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw bad('bad magic: not a moe-edge expert frame');
  const requestId = dv.getUint32(8, true);
  const version = dv.getUint8(4);
  if (version !== PROTOCOL_VERSION) throw new WireError(400, 'unsupported_version', `protocol version ${version} is not supported (this side speaks ${PROTOCOL_VERSION})`, requestId);
  const kind = dv.getUint8(5);
  const flags = dv.getUint16(6, true);
  const payloadBytes = dv.getUint32(20, true);
  if (payloadBytes > MAX_PAYLOAD_BYTES) throw bad(`payload of ${payloadBytes} bytes exceeds ${MAX_PAYLOAD_BYTES}`, requestId);
  if (bytes.length !== HEADER_BYTES + payloadBytes) {
    throw bad(`header says ${payloadBytes} payload bytes, frame carries ${bytes.length - HEADER_BYTES}`, requestId);
  }
  if (flags & ~FLAG_COMBINE) throw bad(`unknown flags 0x${flags.toString(16)}`, requestId);
  return { requestId, modelTag: bytes.slice(12, 20), kind, combine: (flags & FLAG_COMBINE) !== 0, payloadBytes };
}

/** Decode any expert frame; throws WireError (400 bad_frame or unsupported_version) on anything malformed. */
export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  const { requestId, modelTag, kind, combine, payloadBytes } = readFrameHead(bytes);
  const h = { requestId, modelTag, combine };
  const p = new DataView(bytes.buffer, bytes.byteOffset + HEADER_BYTES, payloadBytes);
  const at = bytes.byteOffset + HEADER_BYTES;
  switch (kind) {
    case FrameKind.request: return readRequest(h, p, bytes.buffer, at);
    case FrameKind.result: return readResult(h, p, bytes.buffer, at);
    case FrameKind.error:
      if (h.combine) throw bad('error frames carry no flags', requestId);
      return readError(h, p);
    case FrameKind.head:
      if (h.combine) throw bad('head frames carry no flags', requestId);
      return readHead(h, p, bytes.buffer, at);
    default: throw bad(`unknown frame kind ${kind}`, requestId);
  }
}

const HEAD_OPS = ['embed', 'logits', 'sample'] as const;

function readHead(h: Head, p: DataView, buf: ArrayBufferLike, at: number): DecodedHead {
  const id = h.requestId;
  if (p.byteLength < HEAD_HEAD_BYTES) throw bad(`head payload of ${p.byteLength} bytes is shorter than its ${HEAD_HEAD_BYTES}-byte head`, id);
  const op = HEAD_OPS[p.getUint8(0)];
  if (!op) throw bad(`unknown head op ${p.getUint8(0)}`, id);
  if (p.getUint8(1) | p.getUint8(2) | p.getUint8(3)) throw bad('head reserved bytes are not 0', id);
  const n = p.getUint32(4, true);
  const hidden = p.getUint32(8, true);
  if (hidden === 0) throw bad('hidden size is 0', id);
  if (op === 'sample' && n !== 1) throw bad(`head sample takes one row, got ${n}`, id);
  const body = op === 'embed' ? n * 4 : n * hidden * 4;
  const want = HEAD_HEAD_BYTES + body + (op === 'sample' ? SAMPLE_BYTES : 0);
  if (want !== p.byteLength) throw bad(`head ${op} of ${n} rows needs ${want} payload bytes, got ${p.byteLength}`, id);
  const base = { requestId: h.requestId, modelTag: h.modelTag, kind: 'head' as const, n, hidden };
  const src = new Uint8Array(buf, at + HEAD_HEAD_BYTES, body).slice(); // aligned copy
  if (op === 'embed') return { ...base, op, tokens: new Uint32Array(src.buffer) };
  const rows = new Float32Array(src.buffer);
  for (let i = 0; i < rows.length; i++) if (!Number.isFinite(rows[i])) throw bad(`head row value ${i} is not finite`, id);
  if (op === 'logits') return { ...base, op, rows };
  const s = HEAD_HEAD_BYTES + body;
  const sampling = { temperature: p.getFloat64(s, true), topP: p.getFloat64(s + 8, true), topK: p.getUint32(s + 16, true), u: p.getFloat64(s + 20, true) };
  if (!Number.isFinite(sampling.temperature) || !(sampling.topP > 0 && sampling.topP <= 1) || !(sampling.u >= 0 && sampling.u < 1)) {
    throw bad(`head sample parameters out of range: temperature ${sampling.temperature}, topP ${sampling.topP}, u ${sampling.u}`, id);
  }
  return { ...base, op, rows, sampling };
}

/** Client side: a result answering head call `req` of `n` rows must be (n, width). */
export function checkHeadResultFor(requestId: number, modelTag: Uint8Array, n: number, width: number, res: DecodedResult): void {
  const fail = (what: string) => { throw new WireError(502, 'bad_result', `head result for request ${requestId}: ${what}`, requestId); };
  if (res.requestId !== requestId) fail(`answers request ${res.requestId}`);
  if (!sameTag(res.modelTag, modelTag)) fail(`model tag ${tagHex(res.modelTag)} differs from ${tagHex(modelTag)}`);
  if (res.combine || res.count !== n || res.hidden !== width) fail(`shape (${res.count}, ${res.hidden}), expected (${n}, ${width})`);
}

export function decodeRequest(bytes: Uint8Array): DecodedRequest {
  return expectKind(decodeFrame(bytes), 'request');
}

export function decodeResult(bytes: Uint8Array): DecodedResult {
  return expectKind(decodeFrame(bytes), 'result');
}

export function decodeError(bytes: Uint8Array): DecodedError {
  return expectKind(decodeFrame(bytes), 'error');
}

function expectKind<K extends DecodedFrame['kind']>(f: DecodedFrame, kind: K): Extract<DecodedFrame, { kind: K }> {
  if (f.kind !== kind) throw bad(`expected a ${kind} frame, got a ${f.kind} frame`, f.requestId);
  return f as Extract<DecodedFrame, { kind: K }>;
}

type Head = { requestId: number; modelTag: Uint8Array; combine: boolean };

function readRequest(h: Head, p: DataView, buf: ArrayBufferLike, at: number): DecodedRequest {
  const id = h.requestId;
  if (p.byteLength < REQUEST_HEAD_BYTES) throw bad(`request payload of ${p.byteLength} bytes is shorter than its ${REQUEST_HEAD_BYTES}-byte head`, id);
  const layer = p.getUint16(0, true);
  const actCode = p.getUint8(2);
  const resCode = p.getUint8(3);
  const hidden = p.getUint32(4, true);
  const nTok = p.getUint32(8, true);
  const nPairs = p.getUint32(12, true);
  if (actCode >= ACT_CODES.length) throw bad(`unknown activation dtype ${actCode}`, id);
  if (resCode >= RESULT_CODES.length) throw bad(`unknown result dtype ${resCode}`, id);
  const actDType = ACT_CODES[actCode];
  if (hidden === 0) throw bad('hidden size is 0', id);
  if (actDType === 'q8_0' && hidden % QK !== 0) throw bad(`q8_0 activations need hidden % ${QK} == 0, got ${hidden}`, id);
  // Sizes are checked against the payload before anything is allocated, so a lying count cannot cost memory.
  const pairBytes = nPairs * PAIR_BYTES;
  const actBytes = activationBytes(actDType, nTok, hidden);
  const want = REQUEST_HEAD_BYTES + pairBytes + actBytes;
  if (want !== p.byteLength) throw bad(`request of ${nPairs} pairs and (${nTok}, ${hidden}) ${actDType} activations needs ${want} payload bytes, got ${p.byteLength}`, id);
  const tokens = new Uint32Array(nPairs);
  const experts = new Uint16Array(nPairs);
  const weights = new Float32Array(nPairs);
  let o = REQUEST_HEAD_BYTES;
  for (let i = 0; i < nPairs; i++, o += PAIR_BYTES) {
    const t = p.getUint32(o, true);
    if (t >= nTok) throw bad(`pair ${i}: token ${t} is out of range (nTok ${nTok})`, id);
    if (p.getUint16(o + 6, true) !== 0) throw bad(`pair ${i}: reserved field is not 0`, id);
    const w = p.getFloat32(o + 8, true);
    if (!Number.isFinite(w)) throw bad(`pair ${i}: weight ${w} is not finite`, id);
    tokens[i] = t;
    experts[i] = p.getUint16(o + 4, true);
    weights[i] = w;
  }
  const n = nTok * hidden;
  const src = new Uint8Array(buf, at + o, actBytes);
  let activations: Activations;
  if (actDType === 'f32') {
    const data = new Float32Array(src.slice().buffer); // slice: aligned copy
    for (let i = 0; i < n; i++) if (!Number.isFinite(data[i])) throw bad(`activation ${i} is not finite`, id);
    activations = { dtype: 'f32', data };
  } else if (actDType === 'f16') {
    const data = new Uint16Array(src.slice().buffer);
    checkHalves(data, 'activation', id);
    activations = { dtype: 'f16', data };
  } else {
    const qs = new Int8Array(src.slice(0, n).buffer);
    const d = new Uint16Array(src.slice(n).buffer);
    checkHalves(d, 'q8_0 scale', id);
    activations = { dtype: 'q8_0', qs, d };
  }
  return { kind: 'request', ...h, layer, hidden, nTok, tokens, experts, weights, activations, resultDType: RESULT_CODES[resCode] };
}

function checkHalves(a: Uint16Array, what: string, id: number): void {
  for (let i = 0; i < a.length; i++) if ((a[i] & 0x7c00) === 0x7c00) throw bad(`${what} ${i} is not finite`, id);
}

function readResult(h: Head, p: DataView, buf: ArrayBufferLike, at: number): DecodedResult {
  const id = h.requestId;
  if (p.byteLength < RESULT_HEAD_BYTES) throw bad(`result payload of ${p.byteLength} bytes is shorter than its ${RESULT_HEAD_BYTES}-byte head`, id);
  const code = p.getUint8(0);
  if (code >= RESULT_CODES.length) throw bad(`unknown result dtype ${code}`, id);
  if (p.getUint8(1) | p.getUint8(2) | p.getUint8(3)) throw bad('result reserved bytes are not 0', id);
  const dtype = RESULT_CODES[code];
  const count = p.getUint32(4, true);
  const hidden = p.getUint32(8, true);
  const n = count * hidden;
  const want = RESULT_HEAD_BYTES + n * (dtype === 'f32' ? 4 : 2);
  if (want !== p.byteLength) throw bad(`result of (${count}, ${hidden}) ${dtype} needs ${want} payload bytes, got ${p.byteLength}`, id);
  const src = new Uint8Array(buf, at + RESULT_HEAD_BYTES, want - RESULT_HEAD_BYTES);
  let values: Float32Array;
  // f32 values are viewed where they lie when aligned (they are, at offset 36 of a received message): a decode
  // step's 196 KB of logits from a head shard is then not copied a second time
  if (dtype === 'f32') values = src.byteOffset % 4 === 0 ? new Float32Array(buf, src.byteOffset, n) : new Float32Array(src.slice().buffer);
  else {
    const halves = new Uint16Array(src.slice().buffer);
    values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = f16ToF32(halves[i]);
  }
  return { kind: 'result', ...h, dtype, count, hidden, values };
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function readError(h: Head, p: DataView): DecodedError {
  const id = h.requestId;
  let o = 0;
  const need = (n: number, what: string) => {
    if (o + n > p.byteLength) throw bad(`error frame ends inside its ${what}`, id);
  };
  need(4, 'status');
  const status = p.getUint16(0, true);
  if (status < 400 || status > 599) throw bad(`error status ${status} is not 4xx/5xx`, id);
  o = 2;
  const text = (what: string): string => {
    need(2, `${what} length`);
    const len = p.getUint16(o, true);
    o += 2;
    need(len, what);
    const bytes = new Uint8Array(p.buffer, p.byteOffset + o, len);
    o += len;
    try {
      return utf8Strict.decode(bytes);
    } catch {
      throw bad(`error ${what} is not valid UTF-8`, id);
    }
  };
  const code = text('code');
  const message = text('message');
  if (o !== p.byteLength) throw bad(`error frame has ${p.byteLength - o} trailing bytes`, id);
  return { kind: 'error', requestId: h.requestId, modelTag: h.modelTag, status, code, message };
}

// ---------------------------------------------------------------- helpers for both sides

/**
 * Client side: check that a decoded result answers `req` (same id, tag, mode and shape); a backend that answers
 * something else is misbehaving (WireError 502 bad_result).
 */
export function checkResultFor(req: ExpertRequest, res: DecodedResult): void {
  const want = req.combine ? req.nTok : req.tokens.length;
  const fail = (what: string) => { throw new WireError(502, 'bad_result', `backend result for request ${req.requestId}: ${what}`, req.requestId); };
  if (res.requestId !== req.requestId) fail(`answers request ${res.requestId}`);
  if (!sameTag(res.modelTag, req.modelTag)) fail(`model tag ${tagHex(res.modelTag)} differs from ${tagHex(req.modelTag)}`);
  if (res.combine !== req.combine) fail('COMBINE flag differs');
  if (res.count !== want || res.hidden !== req.hidden) fail(`shape (${res.count}, ${res.hidden}), expected (${want}, ${req.hidden})`);
}

/** The model tag: the first 8 bytes of SHA-256 over the exact bytes of manifest.json. */

export function tagHex(tag: Uint8Array): string {
  let s = '';
  for (const b of tag) s += b.toString(16).padStart(2, '0');
  return s;
}

export function sameTag(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

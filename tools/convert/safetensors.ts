// safetensors reader (and a tiny writer for tests and the placeholder model), runtime-agnostic over Uint8Array.
// Layout: u64 LE header length N, N bytes of JSON header, then the data buffer that every tensor indexes.
// The header is checked as strictly as the reference Rust implementation: known dtypes, sizes that match
// shapes, offsets inside the buffer, no overlaps and no holes, so a corrupt file fails here with its reason.
import { halfToFloatTable } from '../../src/format/quant';

export class SafetensorsError extends Error {
  constructor(detail: string) {
    super(`invalid safetensors file: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

/** Bytes per element of every dtype the format defines (only the float ones decode to Float32Array). */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
};

const MAX_HEADER_BYTES = 100_000_000; // the Rust implementation's limit

export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** absolute byte offset of the tensor's data in the file */
  readonly offset: number;
  readonly bytes: number;
}

export interface SafetensorsHeader {
  /** absolute offset of the data buffer (8 + header length) */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
}

/** The JSON header's length N from the file's first 8 bytes (the header spans bytes [8, 8 + N)). */
export function readHeaderLength(prefix: Uint8Array, fileSize: number): number {
  if (prefix.length < 8 || fileSize < 8) throw new SafetensorsError(`file of ${fileSize} bytes is shorter than the 8-byte header length`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER_BYTES) throw new SafetensorsError(`header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (8 + n > fileSize) throw new SafetensorsError(`header length ${n} runs past the end of a ${fileSize}-byte file`);
  return n;
}

/** Parse and validate the JSON header (`json` = bytes [8, 8 + N) of a file of `fileSize` bytes). */
export function parseHeader(json: Uint8Array, fileSize: number): SafetensorsHeader {
  const dataStart = 8 + json.length;
  const dataBytes = fileSize - dataStart;
  if (dataBytes < 0) throw new SafetensorsError(`header of ${json.length} bytes runs past the end of a ${fileSize}-byte file`);
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError('header is not a JSON object');

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensor>();
  const spans: Array<[begin: number, end: number, name: string]> = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value);
      continue;
    }
    const t = parseEntry(name, value);
    const [begin, end] = t.offsets;
    if (end > dataBytes) throw new SafetensorsError(`tensor ${name} ends at data offset ${end}, past the ${dataBytes}-byte data buffer`);
    spans.push([begin, end, name]);
    tensors.set(name, { name, dtype: t.dtype, shape: t.shape, offset: dataStart + begin, bytes: end - begin });
  }

  // every data byte belongs to exactly one tensor, in offset order
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let at = 0;
  for (const [begin, end, name] of spans) {
    if (begin < at) throw new SafetensorsError(`tensor ${name} at data offset ${begin} overlaps the previous tensor (ends at ${at})`);
    if (begin > at) throw new SafetensorsError(`data bytes [${at}, ${begin}) before tensor ${name} belong to no tensor`);
    at = end;
  }
  if (at !== dataBytes) throw new SafetensorsError(`data buffer has ${dataBytes} bytes but the tensors cover ${at}`);
  return { dataStart, metadata, tensors };
}

function parseMetadata(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SafetensorsError('__metadata__ is not an object');
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new SafetensorsError(`__metadata__.${k} is not a string`);
  }
  return value as Record<string, string>;
}

function parseEntry(name: string, value: unknown): { dtype: string; shape: number[]; offsets: [number, number] } {
  if (typeof value !== 'object' || value === null) throw new SafetensorsError(`tensor ${name}: entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BYTES)) throw new SafetensorsError(`tensor ${name}: unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) throw new SafetensorsError(`tensor ${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw new SafetensorsError(`tensor ${name}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with begin <= end`);
  }
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = numel * SAFETENSORS_DTYPE_BYTES[dtype];
  if (offsets[1] - offsets[0] !== expected) {
    throw new SafetensorsError(`tensor ${name}: ${dtype} ${JSON.stringify(shape)} needs ${expected} bytes but data_offsets span ${offsets[1] - offsets[0]}`);
  }
  return { dtype, shape: shape as number[], offsets: offsets as [number, number] };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Decode a float tensor's raw bytes (F32, F16, BF16, F64; little-endian) to float32 values. */
export function toFloat32(t: Pick<SafetensorsTensor, 'name' | 'dtype' | 'bytes'>, raw: Uint8Array): Float32Array {
  if (raw.length !== t.bytes) throw new SafetensorsError(`tensor ${t.name}: got ${raw.length} bytes, expected ${t.bytes}`);
  const own = raw.slice(); // aligned copy
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(own.buffer);
    case 'F64':
      return Float32Array.from(new Float64Array(own.buffer));
    case 'BF16': {
      const h = new Uint16Array(own.buffer);
      const bits = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) bits[i] = h[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'F16': {
      const halfTable = halfToFloatTable();
      const h = new Uint16Array(own.buffer);
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = halfTable[h[i]];
      return out;
    }
    default:
      throw new SafetensorsError(`tensor ${t.name}: dtype ${t.dtype} is not a float type`);
  }
}

/** A whole safetensors file in memory. */
export interface SafetensorsFile extends SafetensorsHeader {
  /** raw bytes of one tensor (a view into the file) */
  raw(name: string): Uint8Array;
  /** one float tensor as float32 values */
  float32(name: string): Float32Array;
}

export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  const n = readHeaderLength(bytes, bytes.length);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length);
  const entry = (name: string): SafetensorsTensor => {
    const t = header.tensors.get(name);
    if (!t) throw new SafetensorsError(`no tensor named ${name}`);
    return t;
  };
  const raw = (name: string): Uint8Array => {
    const t = entry(name);
    return bytes.subarray(t.offset, t.offset + t.bytes);
  };
  return { ...header, raw, float32: (name) => toFloat32(entry(name), raw(name)) };
}

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Write F32 tensors as a safetensors file (header padded with spaces to 8 bytes, as the Rust writer does). */
export function encodeSafetensors(tensors: TensorToWrite[], metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let at = 0;
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new RangeError(`tensor ${t.name}: shape ${JSON.stringify(t.shape)} does not hold ${t.data.length} values`);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    at += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20);
  head.set(json);
  const out = new Uint8Array(8 + head.length + at);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), p);
    p += t.data.byteLength;
  }
  return out;
}

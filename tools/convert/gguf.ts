// GGUF v3 (llama.cpp's model file): reader and writer for metadata, tensor infos and data, plus the lossless
// conversion between our shard layout of q8_0/q4_0 (quants and f16 scales in separate arrays, quant.ts) and
// ggml's interleaved blocks. Used by the GGUF exporter (tools/export-gguf.ts) and importer (tools/convert/gguf-*.ts).
import { QK, shardBytes, type DType } from '../../src/format/quant';
import { concatBytes } from '../../src/common/bytes';

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value types (gguf_type), by name; ids are the enum values of gguf.h. */
export const GGUF_VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];
export type GgufScalarType = Exclude<GgufValueType, 'array'>;
export type GgufScalar = number | bigint | boolean | string;

/** One metadata value with its exact GGUF type, so a read file writes back byte for byte. 64-bit ints are bigints. */
export type GgufValue =
  | { type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { type: 'u64' | 'i64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GgufScalarType; value: GgufScalar[] };

/**
 * ggml tensor types (enum ggml_type ids) with their block size in elements and bytes. f32/f16/q8_0/q4_0 are
 * ours (DType); the rest are read for import only (dequantized by ggml-dequant.ts). The IQ types and the
 * ternary ones are not listed: a file holding one is refused by name.
 */
export const GGML_TYPES = {
  f32: { id: 0, elems: 1, bytes: 4 },
  f16: { id: 1, elems: 1, bytes: 2 },
  q4_0: { id: 2, elems: QK, bytes: 2 + QK / 2 }, // { f16 d; u8 qs[16] }
  q4_1: { id: 3, elems: 32, bytes: 20 },
  q5_0: { id: 6, elems: 32, bytes: 22 },
  q5_1: { id: 7, elems: 32, bytes: 24 },
  q8_0: { id: 8, elems: QK, bytes: 2 + QK }, // { f16 d; i8 qs[32] }
  q2_K: { id: 10, elems: 256, bytes: 84 },
  q3_K: { id: 11, elems: 256, bytes: 110 },
  q4_K: { id: 12, elems: 256, bytes: 144 },
  q5_K: { id: 13, elems: 256, bytes: 176 },
  q6_K: { id: 14, elems: 256, bytes: 210 },
  bf16: { id: 30, elems: 1, bytes: 2 },
} as const;
export type GgmlType = keyof typeof GGML_TYPES;

// ids of ggml types that exist but are not read here, for a clear refusal
const UNREAD_TYPE_NAMES: Record<number, string> = {
  9: 'q8_1', 15: 'q8_K', 16: 'iq2_xxs', 17: 'iq2_xs', 18: 'iq3_xxs', 19: 'iq1_s', 20: 'iq4_nl', 21: 'iq3_s', 22: 'iq2_s',
  23: 'iq4_xs', 24: 'i8', 25: 'i16', 26: 'i32', 27: 'i64', 28: 'f64', 29: 'iq1_m', 34: 'tq1_0', 35: 'tq2_0', 39: 'mxfp4',
};

/** ids of our DTypes (the writer's types). */
export const GGML_TYPE_IDS = { f32: 0, f16: 1, q4_0: 2, q8_0: 8 } as const satisfies Record<DType, number>;
/** general.file_type (enum llama_ftype) for a model whose matrices are mostly `dtype`. */
export const LLAMA_FTYPE = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 } as const satisfies Record<DType, number>;

/** Bytes of `n` elements of `dtype` in ggml's layout (for our DTypes the same total as our shard layout). */
export function ggmlBytes(dtype: GgmlType, n: number): number {
  const b = GGML_TYPES[dtype];
  if (n % b.elems !== 0) throw new RangeError(`${dtype} needs a multiple of ${b.elems} elements, got ${n}`);
  return (n / b.elems) * b.bytes;
}

export const isDType = (t: GgmlType): t is DType => t in GGML_TYPE_IDS;

/** A tensor in a GGUF file. dims are ggml's ne: dims[0] is the contiguous (column) dimension. */
export interface GgufTensor {
  name: string;
  dims: number[];
  dtype: GgmlType;
  /** ggml-layout bytes (interleaved blocks for q8_0/q4_0). */
  data: Uint8Array;
}

export interface GgufFile {
  version: number;
  /** In file order; general.alignment is kept here as written. */
  metadata: Map<string, GgufValue>;
  tensors: GgufTensor[];
}

export class GgufError extends Error {
  constructor(detail: string) {
    super(`GGUF: ${detail}`);
    this.name = 'GgufError';
  }
}

const elementCount = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

// ---- our shard layout <-> ggml blocks (lossless: the same quants and the same f16 scale bits) ----

/** Shard bytes of `n` elements (quants, then f16 scales) -> ggml bytes (per block: f16 d, then its quants). */
export function shardToGgml(dtype: DType, shard: Uint8Array, n: number): Uint8Array {
  if (shard.length < shardBytes(dtype, n)) throw new RangeError(`${dtype}: ${shard.length} bytes hold fewer than ${n} elements`);
  if (dtype === 'f32' || dtype === 'f16') return shard.slice(0, shardBytes(dtype, n));
  const nb = n / QK;
  const qPerBlock = GGML_TYPES[dtype].bytes - 2;
  const scales = nb * qPerBlock; // start of the f16 scales in the shard
  const out = new Uint8Array(nb * GGML_TYPES[dtype].bytes);
  for (let b = 0; b < nb; b++) {
    const o = b * GGML_TYPES[dtype].bytes;
    out[o] = shard[scales + 2 * b];
    out[o + 1] = shard[scales + 2 * b + 1];
    out.set(shard.subarray(b * qPerBlock, (b + 1) * qPerBlock), o + 2);
  }
  return out;
}

/** ggml bytes of `n` elements -> shard bytes (the inverse of shardToGgml). */
export function ggmlToShard(dtype: DType, ggml: Uint8Array, n: number): Uint8Array {
  if (ggml.length < ggmlBytes(dtype, n)) throw new RangeError(`${dtype}: ${ggml.length} bytes hold fewer than ${n} elements`);
  if (dtype === 'f32' || dtype === 'f16') return ggml.slice(0, ggmlBytes(dtype, n));
  const nb = n / QK;
  const qPerBlock = GGML_TYPES[dtype].bytes - 2;
  const scales = nb * qPerBlock;
  const out = new Uint8Array(shardBytes(dtype, n));
  for (let b = 0; b < nb; b++) {
    const o = b * GGML_TYPES[dtype].bytes;
    out[scales + 2 * b] = ggml[o];
    out[scales + 2 * b + 1] = ggml[o + 1];
    out.set(ggml.subarray(o + 2, o + 2 + qPerBlock), b * qPerBlock);
  }
  return out;
}

// ---- llama.cpp's q/k row order ----

/**
 * llama.cpp's `llama` and `granite*` archs rotate adjacent pairs (its NORM rope); HF checkpoints rotate halves.
 * Its converter permutes the rows of attn_q/attn_k per head so the two agree: GGUF row 2j+h of a head = HF
 * row h*hd/2+j. 'to-gguf' applies that permutation, 'from-gguf' undoes it. Rows are whole quant blocks, so
 * either direction is lossless at any type.
 */
export function ropePermuteRows(data: Uint8Array, rows: number, nHead: number, direction: 'to-gguf' | 'from-gguf' = 'to-gguf'): Uint8Array {
  const rowBytes = data.length / rows;
  const hd = rows / nHead;
  if (!Number.isInteger(rowBytes) || !Number.isInteger(hd) || hd % 2 !== 0) throw new RangeError(`cannot split ${rows} rows of ${data.length} bytes into ${nHead} heads`);
  const out = new Uint8Array(data.length);
  for (let h = 0; h < nHead; h++)
    for (let j = 0; j < hd / 2; j++)
      for (let half = 0; half < 2; half++) {
        const hf = h * hd + half * (hd / 2) + j;
        const gg = h * hd + 2 * j + half;
        const [src, dst] = direction === 'to-gguf' ? [hf, gg] : [gg, hf];
        out.set(data.subarray(src * rowBytes, (src + 1) * rowBytes), dst * rowBytes);
      }
  return out;
}

// ---- reader ----

class Reader {
  private pos = 0;
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });
  /** partial: `bytes` is the head of a longer file, so running out means "read more", not a bad file */
  constructor(readonly bytes: Uint8Array, private readonly partial = false) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get offset(): number { return this.pos; }
  private need(n: number): number {
    if (this.pos + n > this.bytes.length) {
      if (this.partial) throw new GgufHeaderTruncated(`header continues past byte ${this.bytes.length}`);
      throw new GgufError(`truncated at byte ${this.pos} (need ${n} more)`);
    }
    const p = this.pos;
    this.pos += n;
    return p;
  }
  u32(): number { return this.view.getUint32(this.need(4), true); }
  u64(): bigint { return this.view.getBigUint64(this.need(8), true); }
  /** A u64 count or size that must fit a JS number. */
  size(): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError(`size ${v} too large`);
    return Number(v);
  }
  string(): string {
    const n = this.size();
    const p = this.need(n);
    try {
      return this.utf8.decode(this.bytes.subarray(p, p + n));
    } catch {
      throw new GgufError(`string at byte ${p} is not valid UTF-8`);
    }
  }
  scalar(type: GgufScalarType): GgufScalar {
    const v = this.view;
    switch (type) {
      case 'u8': return v.getUint8(this.need(1));
      case 'i8': return v.getInt8(this.need(1));
      case 'u16': return v.getUint16(this.need(2), true);
      case 'i16': return v.getInt16(this.need(2), true);
      case 'u32': return v.getUint32(this.need(4), true);
      case 'i32': return v.getInt32(this.need(4), true);
      case 'f32': return v.getFloat32(this.need(4), true);
      case 'bool': {
        const b = v.getUint8(this.need(1));
        if (b > 1) throw new GgufError(`bool value ${b}`);
        return b === 1;
      }
      case 'string': return this.string();
      case 'u64': return v.getBigUint64(this.need(8), true);
      case 'i64': return v.getBigInt64(this.need(8), true);
      case 'f64': return v.getFloat64(this.need(8), true);
    }
  }
  valueType(): GgufValueType {
    const id = this.u32();
    const t = GGUF_VALUE_TYPES[id];
    if (!t) throw new GgufError(`unknown value type ${id}`);
    return t;
  }
  value(): GgufValue {
    const type = this.valueType();
    if (type !== 'array') return { type, value: this.scalar(type) } as GgufValue;
    const itemType = this.valueType();
    if (itemType === 'array') throw new GgufError('nested arrays are not supported');
    const n = this.size();
    // every item takes at least one byte: a count beyond the bytes left is a lie, refused before allocating
    if (n > this.bytes.length - this.offset) {
      if (this.partial) throw new GgufHeaderTruncated(`header continues past byte ${this.bytes.length}`);
      throw new GgufError(`array of ${n} items runs past the end of the file`);
    }
    const value: GgufScalar[] = new Array(n);
    for (let i = 0; i < n; i++) value[i] = this.scalar(itemType);
    return { type, itemType, value };
  }
}

const TYPE_OF_ID = new Map<number, GgmlType>(Object.entries(GGML_TYPES).map(([k, v]) => [v.id, k as GgmlType]));

/** Parses a whole GGUF v3 file; tensor data are views into `bytes` (no copy). */
/** Where a tensor's data lies in the file: bytes [start, start + bytes). */
export interface GgufTensorInfo {
  name: string;
  dims: number[];
  dtype: GgmlType;
  start: number;
  bytes: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
}

/** Thrown when `head` ends inside the header: read more of the file and parse again. */
export class GgufHeaderTruncated extends GgufError {}

/**
 * Parses the header (metadata and tensor infos) from the first bytes of a file of `fileSize` bytes, so a
 * multi-gigabyte model is read tensor by tensor. Tensor data must lie within fileSize.
 */
export function readGgufHeader(head: Uint8Array, fileSize: number = head.length): GgufHeader {
  const r = new Reader(head, head.length < fileSize);
  const magic = r.u32();
  if (magic !== GGUF_MAGIC) throw new GgufError(`bad magic 0x${magic.toString(16)} (not a GGUF file)`);
  const version = r.u32();
  if (version !== GGUF_VERSION) throw new GgufError(`version ${version} (only ${GGUF_VERSION} is supported)`);
  const nTensors = r.size();
  const nKv = r.size();
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = r.string();
    if (metadata.has(key)) throw new GgufError(`duplicate key ${key}`);
    metadata.set(key, r.value());
  }
  const align = alignmentOf(metadata);
  const infos: { name: string; dims: number[]; dtype: GgmlType; offset: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = r.string();
    const nDims = r.u32();
    if (nDims < 1 || nDims > 4) throw new GgufError(`${name}: ${nDims} dims`);
    const dims = Array.from({ length: nDims }, () => r.size());
    const typeId = r.u32();
    const dtype = TYPE_OF_ID.get(typeId);
    if (!dtype) {
      const known = UNREAD_TYPE_NAMES[typeId];
      throw new GgufError(`${name}: ggml type ${known ? `${known} (${typeId}) is not supported` : `${typeId} is unknown`} (supported: ${Object.keys(GGML_TYPES).join(', ')})`);
    }
    const offset = r.size();
    if (offset % align !== 0) throw new GgufError(`${name}: data offset ${offset} not aligned to ${align}`);
    infos.push({ name, dims, dtype, offset });
  }
  const dataStart = alignUp(r.offset, align);
  const tensors = infos.map(({ name, dims, dtype, offset }) => {
    const start = dataStart + offset;
    let len: number;
    try {
      len = ggmlBytes(dtype, elementCount(dims));
    } catch (e) {
      throw new GgufError(`${name}: ${(e as Error).message}`);
    }
    if (start + len > fileSize) throw new GgufError(`${name}: data runs past the end of the file`);
    return { name, dims, dtype, start, bytes: len };
  });
  return { version, metadata, tensors };
}

/** A whole GGUF file in memory: header plus views of every tensor's data. */
export function readGguf(bytes: Uint8Array): GgufFile {
  const h = readGgufHeader(bytes);
  return { version: h.version, metadata: h.metadata, tensors: h.tensors.map((t) => ({ name: t.name, dims: t.dims, dtype: t.dtype, data: bytes.subarray(t.start, t.start + t.bytes) })) };
}

function alignmentOf(metadata: Map<string, GgufValue>): number {
  const a = metadata.get('general.alignment');
  if (!a) return GGUF_DEFAULT_ALIGNMENT;
  if (a.type !== 'u32' || a.value === 0 || (a.value & (a.value - 1)) !== 0) throw new GgufError('general.alignment must be a u32 power of two');
  return a.value;
}

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

// ---- writer ----

class Writer {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(1 << 16);
  private view = new DataView(this.cur.buffer);
  private pos = 0;
  private flushed = 0;
  private readonly utf8 = new TextEncoder();
  get length(): number { return this.flushed + this.pos; }
  private flush(size: number): void {
    this.chunks.push(this.cur.subarray(0, this.pos));
    this.flushed += this.pos;
    this.cur = new Uint8Array(Math.max(1 << 16, size));
    this.view = new DataView(this.cur.buffer);
    this.pos = 0;
  }
  private room(n: number): void {
    if (this.pos + n > this.cur.length) this.flush(n);
  }
  bytes(b: Uint8Array): void {
    if (b.length > 1 << 16) {
      this.flush(0); // big blocks (tensor data) stay chunks of their own, uncopied until finish()
      this.chunks.push(b);
      this.flushed += b.length;
      return;
    }
    this.room(b.length);
    this.cur.set(b, this.pos);
    this.pos += b.length;
  }
  u32(v: number): void { this.room(4); this.view.setUint32(this.pos, v, true); this.pos += 4; }
  u64(v: number | bigint): void { this.room(8); this.view.setBigUint64(this.pos, BigInt(v), true); this.pos += 8; }
  string(s: string): void {
    const b = this.utf8.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(align: number): void {
    const n = alignUp(this.length, align) - this.length;
    if (n) this.bytes(new Uint8Array(n));
  }
  scalar(type: GgufScalarType, v: GgufScalar): void {
    const num = () => {
      if (typeof v !== 'number') throw new GgufError(`${type} value must be a number, got ${typeof v}`);
      return v;
    };
    const size = { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8, string: 0 }[type];
    if (type === 'string') {
      if (typeof v !== 'string') throw new GgufError(`string value must be a string, got ${typeof v}`);
      return this.string(v);
    }
    this.room(size);
    const d = this.view;
    const p = this.pos;
    switch (type) {
      case 'u8': d.setUint8(p, num()); break;
      case 'i8': d.setInt8(p, num()); break;
      case 'u16': d.setUint16(p, num(), true); break;
      case 'i16': d.setInt16(p, num(), true); break;
      case 'u32': d.setUint32(p, num(), true); break;
      case 'i32': d.setInt32(p, num(), true); break;
      case 'f32': d.setFloat32(p, num(), true); break;
      case 'f64': d.setFloat64(p, num(), true); break;
      case 'bool': d.setUint8(p, v ? 1 : 0); break;
      case 'u64': d.setBigUint64(p, BigInt(v as number | bigint), true); break;
      case 'i64': d.setBigInt64(p, BigInt(v as number | bigint), true); break;
    }
    this.pos += size;
  }
  value(v: GgufValue): void {
    this.u32(GGUF_VALUE_TYPES.indexOf(v.type));
    if (v.type !== 'array') return this.scalar(v.type, v.value);
    this.u32(GGUF_VALUE_TYPES.indexOf(v.itemType));
    this.u64(v.value.length);
    for (const x of v.value) this.scalar(v.itemType, x);
  }
  finish(): Uint8Array {
    this.chunks.push(this.cur.subarray(0, this.pos));
    return concatBytes(this.chunks);
  }
}

/** Serialises a GGUF v3 file: header, metadata in map order, tensor infos, then data aligned to general.alignment. */
export function writeGguf(file: Pick<GgufFile, 'metadata' | 'tensors'>): Uint8Array {
  const align = alignmentOf(file.metadata);
  const w = new Writer();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(file.tensors.length);
  w.u64(file.metadata.size);
  for (const [key, v] of file.metadata) {
    w.string(key);
    w.value(v);
  }
  let offset = 0;
  const names = new Set<string>();
  for (const t of file.tensors) {
    if (names.has(t.name)) throw new GgufError(`duplicate tensor ${t.name}`);
    names.add(t.name);
    const len = ggmlBytes(t.dtype, elementCount(t.dims));
    if (t.data.length !== len) throw new GgufError(`${t.name}: ${t.data.length} bytes, ${t.dtype} ${t.dims.join('x')} needs ${len}`);
    if (t.dims[0] % GGML_TYPES[t.dtype].elems !== 0) throw new GgufError(`${t.name}: rows of ${t.dims[0]} are not whole ${t.dtype} blocks`);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPES[t.dtype].id);
    w.u64(offset);
    offset = alignUp(offset + len, align);
  }
  w.pad(align);
  for (const t of file.tensors) {
    w.bytes(t.data);
    w.pad(align);
  }
  return w.finish();
}

// ---- metadata helpers ----

export const gguf = {
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  string: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (value: string[]): GgufValue => ({ type: 'array', itemType: 'string', value }),
  i32s: (value: number[]): GgufValue => ({ type: 'array', itemType: 'i32', value }),
  f32s: (value: number[]): GgufValue => ({ type: 'array', itemType: 'f32', value }),
};

/** A metadata value as a plain JS value (bigints that fit become numbers), or undefined when absent. */
export function metaValue(file: Pick<GgufFile, 'metadata'>, key: string): GgufScalar | GgufScalar[] | undefined {
  const v = file.metadata.get(key);
  if (!v) return undefined;
  const plain = (x: GgufScalar) => (typeof x === 'bigint' && x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x);
  return v.type === 'array' ? v.value.map(plain) : plain(v.value);
}

// The mat-vec bandwidth measurement, shared by Node (node.ts) and workerd (worker.ts): copies of one weight
// matrix rotated through so every call reads from DRAM as in decode, timed in slices that alternate with a
// v128 streaming read (the yardstick), so both see the same load on a shared machine.
import { memoryBytes } from '../../src/format/quant';
import type { Heap } from '../../src/kernels/heap';
import type { Kernels, Mat, Ptr } from '../../src/kernels/types';

export type Quant = 'q8_0' | 'q4_0';
/** wasm-relaxed: the relaxed build on its i16 dots; wasm-relaxed-fused: on fused dot-adds (src/kernels/fused-dot.ts) */
export type Executor = 'wasm-scalar' | 'wasm-simd' | 'wasm-relaxed' | 'wasm-relaxed-fused';

/** One benchmark case: W (rows, cols) @ x (cols) -> (rows) with weights in `quant`, run by `executor`. */
export interface CaseSpec {
  name: string;
  quant: Quant;
  rows: number;
  cols: number;
  executor: Executor;
}

export interface MeasureOptions {
  rounds: number; // rounds per case; the report gives the median over rounds
  minMs: number; // per round, the stream and the mat-vec are each timed for at least this long in total
  slices: number; // ...in this many alternating slices (stream, mat-vec, stream, ...)
  poolBytes: number; // weight copies together exceed this, so the pool does not fit in the last-level cache
  streamBytes: number; // size of the streaming-read buffer
}

export const DEFAULT_OPTIONS: MeasureOptions = { rounds: 5, minMs: 250, slices: 8, poolBytes: 64 << 20, streamBytes: 256 << 20 };

/** A WASM v128 read over a buffer in `heap` (bytes a multiple of 64); returns something derived from the data. */
export interface StreamReader {
  readonly heap: Heap;
  read(ptr: Ptr, bytes: number): number;
}

export interface CaseResult extends CaseSpec {
  matBytes: number; // bytes of one matrix in kernel memory (quants + f32 scales)
  copies: number;
  gbps: number[]; // mat-vec, one per round
  streamGbps: number[]; // streaming read, one per round, interleaved with that round's mat-vec
}

/** A clock in milliseconds: performance.now in both runtimes (whole ms in workerd). */
export type Clock = () => number;

/** A unit of work that returns the bytes it read; each is short (a few ms) so slices end close to their target. */
export type Pass = () => number;

export interface Tally { bytes: number; ms: number }

/** Runs `pass` until `ms` have elapsed on `now`; adds bytes and elapsed ms to `into`. */
export function timeSlice(pass: Pass, ms: number, now: Clock, into: Tally): void {
  const t0 = now();
  let bytes = 0;
  let el = 0;
  do {
    bytes += pass();
    el = now() - t0;
  } while (el < ms);
  into.bytes += bytes;
  into.ms += el;
}

/** One round: `slices` alternating slices of a and b, each kind timed for >= minMs in total. Returns GB/s (1 GB = 1e9 B). */
export function timePair(a: Pass, b: Pass, minMs: number, slices: number, now: Clock): [number, number] {
  const ta: Tally = { bytes: 0, ms: 0 };
  const tb: Tally = { bytes: 0, ms: 0 };
  for (let i = 0; i < slices; i++) {
    timeSlice(a, minMs / slices, now, ta);
    timeSlice(b, minMs / slices, now, tb);
  }
  return [ta.bytes / ta.ms / 1e6, tb.bytes / tb.ms / 1e6];
}

const STREAM_CHUNK = 16 << 20;
const MATVEC_CHUNK = 4 << 20;

/** Allocates and fills the streaming buffer once (untouched pages would read the shared zero page). */
export function prepareStream(reader: StreamReader, bytes: number): Ptr {
  const ptr = reader.heap.alloc(bytes);
  const u32 = new Uint32Array(reader.heap.memory.buffer, ptr, bytes / 4);
  let s = 0x9e3779b9;
  for (let i = 0; i < u32.length; i++) u32[i] = s = (s ^ (s << 13) ^ (s >>> 17) ^ (s << 5)) >>> 0;
  return ptr;
}

/** Each call reads the next 16 MiB of the buffer, wrapping around: the buffer is read in order, from DRAM. */
export function streamPass(reader: StreamReader, ptr: Ptr, bytes: number): Pass {
  const chunk = Math.min(STREAM_CHUNK, bytes);
  let off = 0;
  return () => {
    reader.read(ptr + off, chunk); // a WASM call: the engine cannot drop it even though its sum goes unused
    off = off + 2 * chunk > bytes ? 0 : off + chunk;
    return chunk;
  };
}

/** One matrix's bytes in kernel memory: quants then f32 scales (src/format/quant.ts, memoryBytes). */
function makeMatrixBytes(quant: Quant, rows: number, cols: number): { qs: Uint8Array; scales: Float32Array } {
  const n = rows * cols;
  const qs = new Uint8Array(memoryBytes(quant, n) - (n / 32) * 4);
  let s = 0x2545f491;
  for (let i = 0; i < qs.length; i++) {
    s = (s ^ (s << 13) ^ (s >>> 17) ^ (s << 5)) >>> 0;
    qs[i] = s & 0xff;
  }
  const scales = new Float32Array(n / 32);
  for (let i = 0; i < scales.length; i++) scales[i] = 0.002 + (i % 17) * 0.0005;
  return { qs, scales };
}

export interface MatvecPool {
  mats: Mat[];
  x: Ptr; // (cols) f32
  y: Ptr; // (rows) f32
  matBytes: number;
  release(): void;
}

/**
 * Uploads enough copies of one random matrix into `k.heap` that together they exceed poolBytes. The copies
 * share one heap block (each copy: quants, then its f32 scales, 64-byte aligned): thousands of live heap
 * blocks would make every alloc/release the kernels do per call slow (V8 Map churn), which is not the
 * kernel's cost.
 */
export function preparePool(k: Kernels, quant: Quant, rows: number, cols: number, poolBytes: number): MatvecPool {
  const matBytes = memoryBytes(quant, rows * cols);
  const { qs, scales } = makeMatrixBytes(quant, rows, cols);
  const qsSpan = align64(qs.length);
  const stride = qsSpan + align64(scales.byteLength);
  const copies = Math.max(2, Math.ceil(poolBytes / matBytes));
  const heap = k.heap;
  const block = heap.alloc(copies * stride);
  const x = heap.alloc(cols * 4);
  const y = heap.alloc(rows * 4);
  const mats: Mat[] = [];
  for (let c = 0; c < copies; c++) {
    const data = block + c * stride;
    heap.u8(data, qs.length).set(qs);
    heap.f32(data + qsSpan, scales.length).set(scales);
    const m: Mat = { dtype: quant, rows, cols, data, scales: data + qsSpan };
    k.packWeights?.(m); // as the engine places weights (packed q4_0 in the relaxed executor)
    mats.push(m);
  }
  const xs = heap.f32(x, cols);
  for (let i = 0; i < cols; i++) xs[i] = Math.sin(i * 0.37) * 1.5;
  return { mats, x, y, matBytes, release: () => [block, x, y].forEach((p) => heap.release(p)) };
}

const align64 = (n: number) => Math.ceil(n / 64) * 64;

/** Each call runs one mat-vec on each of the next ~4 MiB of copies, wrapping around; returns the weight bytes read. */
export function matvecPass(k: Kernels, pool: MatvecPool): Pass {
  const { mats, x, y, matBytes } = pool;
  const n = Math.max(1, Math.min(mats.length, Math.floor(MATVEC_CHUNK / matBytes)));
  let next = 0;
  return () => {
    for (let i = 0; i < n; i++) {
      k.matmul(mats[next], x, y, 1); // W (rows, cols) @ x (cols) -> y (rows)
      next = next + 1 === mats.length ? 0 : next + 1;
    }
    return n * matBytes;
  };
}

/** Runs `pass` until it has read `bytes` (a warm-up: JIT tiers, first touch of pages, branch predictors). */
function runBytes(pass: Pass, bytes: number): void {
  for (let done = 0; done < bytes; ) done += pass();
}

// Correctness is the conformance suite's job; this only catches a kernel that wrote nothing (a fast no-op).
function checkOutput(k: Kernels, pool: MatvecPool, spec: CaseSpec): void {
  const y = k.heap.f32(pool.y, spec.rows);
  if (!y.every(Number.isFinite) || y.every((v) => v === 0)) throw new Error(`${spec.executor} ${spec.quant} ${spec.rows}x${spec.cols}: mat-vec output is zero or not finite`);
}

/** Times one case: opts.rounds rounds, each alternating streaming-read and mat-vec slices (see timePair). */
export function measureCase(
  spec: CaseSpec,
  k: Kernels,
  stream: StreamReader,
  streamPtr: Ptr,
  opts: MeasureOptions,
  now: Clock,
): CaseResult {
  const pool = preparePool(k, spec.quant, spec.rows, spec.cols, opts.poolBytes);
  try {
    const mv = matvecPass(k, pool);
    const st = streamPass(stream, streamPtr, opts.streamBytes);
    runBytes(mv, pool.mats.length * pool.matBytes);
    checkOutput(k, pool, spec);
    runBytes(st, opts.streamBytes);
    const gbps: number[] = [];
    const streamGbps: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      const [s, m] = timePair(st, mv, opts.minMs, opts.slices, now);
      streamGbps.push(s);
      gbps.push(m);
    }
    return { ...spec, matBytes: pool.matBytes, copies: pool.mats.length, gbps, streamGbps };
  } finally {
    pool.release();
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

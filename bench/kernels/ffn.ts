// moe-edge's fused expert FFN (k.ffnSwiglu: down(silu(gate x) * up x)) at batch B, timed against the v128
// streaming read in alternating slices (bench/matvec's yardstick), with weights rotated out of cache as in decode.
import { memoryBytes } from '../../src/format/quant';
import type { Kernels, Mat, Ptr } from '../../src/kernels/types';
import { streamPass, timePair, type Clock, type Pass, type Quant, type StreamReader } from '../matvec/measure';

/** Expert dims: gate/up (I, H), down (H, I). */
export interface FfnShape {
  model: string;
  hidden: number; // H
  inter: number; // I
}

export interface FfnPool {
  experts: { gate: Mat; up: Mat; down: Mat }[];
  x: Ptr; // (B, H) f32
  y: Ptr; // (B, H) f32
  expertBytes: number; // gate + up + down in kernel memory (quants + f32 scales)
  release(): void;
}

const align64 = (n: number) => Math.ceil(n / 64) * 64;

function fillRandom(u8: Uint8Array, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < u8.length; i++) {
    s = (s ^ (s << 13) ^ (s >>> 17) ^ (s << 5)) >>> 0;
    u8[i] = s & 0xff;
  }
}

/**
 * Copies of one random expert (gate, up, down) until they exceed poolBytes, in one heap block (many live
 * heap blocks would make the executor's per-call scratch alloc slow, which is not the kernel's cost).
 */
export function prepareFfnPool(k: Kernels, quant: Quant, s: FfnShape, batch: number, poolBytes: number): FfnPool {
  const n = s.hidden * s.inter;
  const matBytes = memoryBytes(quant, n);
  const qsBytes = matBytes - (n / 32) * 4;
  const qs = new Uint8Array(qsBytes);
  fillRandom(qs, 0x2545f491);
  const scales = Float32Array.from({ length: n / 32 }, (_, i) => 0.002 + (i % 17) * 0.0005);
  const stride = align64(qsBytes) + align64(scales.byteLength);
  const expertBytes = 3 * matBytes;
  const copies = Math.max(2, Math.ceil(poolBytes / expertBytes));
  const heap = k.heap;
  const block = heap.alloc(copies * 3 * stride);
  const x = heap.alloc(batch * s.hidden * 4);
  const y = heap.alloc(batch * s.hidden * 4);
  const experts: FfnPool['experts'] = [];
  for (let c = 0; c < copies; c++) {
    const mat = (j: number, rows: number, cols: number): Mat => {
      const data = block + (3 * c + j) * stride;
      heap.u8(data, qsBytes).set(qs);
      heap.f32(data + align64(qsBytes), scales.length).set(scales);
      const m: Mat = { dtype: quant, rows, cols, data, scales: data + align64(qsBytes) };
      k.packWeights?.(m); // as the engine places weights (packed q4_0 in the relaxed executor)
      return m;
    };
    experts.push({ gate: mat(0, s.inter, s.hidden), up: mat(1, s.inter, s.hidden), down: mat(2, s.hidden, s.inter) });
  }
  const xs = heap.f32(x, batch * s.hidden);
  for (let i = 0; i < xs.length; i++) xs[i] = Math.sin(i * 0.37) * 1.5;
  return { experts, x, y, expertBytes, release: () => [block, x, y].forEach((p) => heap.release(p)) };
}

const PASS_BYTES = 4 << 20;

/** Each call runs the FFN on the next ~4 MiB of expert copies; returns the weight bytes read. */
export function ffnPass(k: Kernels, pool: FfnPool, batch: number): Pass {
  const n = Math.max(1, Math.min(pool.experts.length, Math.floor(PASS_BYTES / pool.expertBytes)));
  let next = 0;
  return () => {
    for (let i = 0; i < n; i++) {
      const e = pool.experts[next];
      k.ffnSwiglu(e.gate, e.up, e.down, pool.x, pool.y, batch); // Y (B, H) = down(silu(gate X) * up X)
      next = next + 1 === pool.experts.length ? 0 : next + 1;
    }
    return n * pool.expertBytes;
  };
}

export interface PairResult {
  gbps: number[]; // per round
  streamGbps: number[]; // per round, interleaved with the same round's FFN slices
}

/** opts.rounds rounds of alternating stream / FFN slices (bench/matvec's timePair). */
export function measureFfn(k: Kernels, stream: StreamReader, streamPtr: Ptr, streamBytes: number, quant: Quant, s: FfnShape, batch: number, opts: { rounds: number; minMs: number; slices: number; poolBytes: number }, now: Clock): PairResult & { expertBytes: number } {
  const pool = prepareFfnPool(k, quant, s, batch, opts.poolBytes);
  try {
    const f = ffnPass(k, pool, batch);
    const st = streamPass(stream, streamPtr, streamBytes);
    for (let done = 0; done < pool.experts.length * pool.expertBytes; ) done += f(); // warm-up: JIT, first touch
    const y = k.heap.f32(pool.y, batch * s.hidden);
    if (!y.every(Number.isFinite) || y.every((v) => v === 0)) throw new Error(`ffn ${quant} ${s.model} B=${batch}: output is zero or not finite`);
    const out: PairResult = { gbps: [], streamGbps: [] };
    for (let r = 0; r < opts.rounds; r++) {
      const [sg, fg] = timePair(st, f, opts.minMs, opts.slices, now);
      out.streamGbps.push(sg);
      out.gbps.push(fg);
    }
    return { ...out, expertBytes: pool.expertBytes };
  } finally {
    pool.release();
  }
}

/** Async twin of timePair for peers whose call is a promise: `slices` alternating slices, GB/s of each kind. */
export async function timePairAsync(a: Pass, b: () => Promise<number>, minMs: number, slices: number, now: Clock): Promise<[number, number]> {
  let aBytes = 0, aMs = 0, bBytes = 0, bMs = 0;
  for (let i = 0; i < slices; i++) {
    let t0 = now();
    do aBytes += a(); while (now() - t0 < minMs / slices);
    aMs += now() - t0;
    t0 = now();
    do bBytes += await b(); while (now() - t0 < minMs / slices);
    bMs += now() - t0;
  }
  return [aBytes / aMs / 1e6, bBytes / bMs / 1e6];
}

// Runs conformance cases, written against the synchronous Kernels interface, on the asynchronous WebGPU kernels:
// a case's exec runs over a plain heap until its next kernel call, which is recorded (operands copied out of the
// heap), computed on the GPU, and written back where the case reads it on the next run; the last run returns the
// case's outputs. Cases that chain kernels (one's output feeding the next) thus see the GPU's values throughout.
// Cases and verify() are those of every other executor, unchanged.
import { QK, isQuantized, quantBytes, type DType } from '../../../../src/format/quant';
import { Heap } from '../../../../src/kernels/heap';
import type { AttentionShape, Kernels, KvRows, Mat, Ptr, RopeLayout } from '../../../../src/kernels/types';
import { BufferUsage } from '../../../../gpu-backend/devices/webgpu/adapter';
import { Plan, type BufRef, type WebGpuKernels } from '../../../../gpu-backend/devices/webgpu/kernels';
import type { HostTensor } from '../../../../gpu-backend/devices/webgpu/layout';
import { ropeTable } from '../../../../gpu-backend/devices/webgpu/rope-table';
import { WebGpuTrunkKernels, type GpuCache } from '../../../../gpu-backend/devices/webgpu/trunk-kernels';
import type { Case } from '../cases-matmul';
import { Arena } from '../harness';

/** The kernels the device implements; a case that calls anything else is not a device case. */
export const DEVICE_OPS = ['matmul', 'ffnSwiglu', 'rmsNorm', 'rope', 'attention', 'storeRows', 'softmax', 'topK', 'addScaled'] as const;

export function isDeviceCase(c: Case): boolean {
  return DEVICE_OPS.some((op) => c.name.startsWith(`${op} `));
}

export type Call =
  | { op: 'matmul'; w: HostTensor; x: Float32Array; n: number }
  | { op: 'ffnSwiglu'; gate: HostTensor; up: HostTensor; down: HostTensor; x: Float32Array; n: number }
  | { op: 'rmsNorm'; x: Float32Array; w: Float32Array; n: number; nTok: number; eps: number; inPlace: boolean }
  | { op: 'rope'; x: Float32Array; nTok: number; nHeads: number; headDim: number; rotDims: number; pos0: number; base: number; layout: RopeLayout }
  | { op: 'attention'; q: Float32Array; k: Cache; v: Cache; nTok: number; pos0: number; shape: AttentionShape }
  | { op: 'storeRows'; x: Float32Array; dst: Cache; row0: number; nRows: number }
  | { op: 'softmax'; x: Float32Array; n: number; rows: number }
  | { op: 'topK'; x: Float32Array; n: number; k: number }
  | { op: 'addScaled'; a: Float32Array; b: Float32Array; s: number; n: number };

/** A KV cache's contents: `rows` of `cols` as stored (quants or values, then f32 scales for q8_0/q4_0). */
interface Cache { dtype: DType; rows: number; cols: number; bytes: Uint8Array; scales: Float32Array }

/** What one call leaves in the heap, in the order replayKernels writes it back (topK: indices, then values). */
type Outputs = (Float32Array | Int32Array | Uint8Array)[];

/** Kernels over their own heap that record each device call and write back the outputs `onCall` gives (null: none). */
function replayKernels(onCall: (c: Call) => Outputs | null): Kernels {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  const heap = new Heap(memory, 1024);
  const host = (w: Mat): HostTensor => ({
    dtype: w.dtype,
    rows: w.rows,
    cols: w.cols,
    data: heap.u8(w.data, quantBytes(w.dtype, w.rows * w.cols)).slice(),
    scales: isQuantized(w.dtype) ? heap.f32(w.scales, (w.rows * w.cols) / QK).slice() : null,
  });
  const f32 = (p: Ptr, n: number) => heap.f32(p, n).slice();
  const write = (ptrs: Ptr[], out: Outputs | null) => {
    out?.forEach((o, i) => {
      if (o instanceof Int32Array) heap.i32(ptrs[i], o.length).set(o);
      else if (o instanceof Uint8Array) heap.u8(ptrs[i], o.length).set(o);
      else heap.f32(ptrs[i], o.length).set(o);
    });
  };
  // a bare pointer is an f32 cache of which only the live rows are known: rows of NaN follow them on the GPU, so
  // that a kernel reading past the causal end returns NaN; a Mat is uploaded whole (the cases poison its tail)
  const cache = (c: KvRows, live: number, cols: number): Cache => {
    if (typeof c === 'number') {
      const values = new Float32Array((live + POISON_ROWS) * cols).fill(NaN);
      values.set(f32(c, live * cols));
      return { dtype: 'f32', rows: live + POISON_ROWS, cols, bytes: new Uint8Array(values.buffer), scales: new Float32Array(0) };
    }
    const n = c.rows * c.cols;
    return { dtype: c.dtype, rows: c.rows, cols: c.cols, bytes: heap.u8(c.data, quantBytes(c.dtype, n)).slice(), scales: isQuantized(c.dtype) ? f32(c.scales, n / QK) : new Float32Array(0) };
  };
  const unsupported = (op: string) => () => { throw new Error(`${op} is not a device kernel (the device runs ${DEVICE_OPS.join(', ')})`); };
  return {
    name: 'webgpu (replay)',
    heap,
    matmul(w, x, y, n) {
      write([y], onCall({ op: 'matmul', w: host(w), x: f32(x, n * w.cols), n }));
    },
    ffnSwiglu(gate, up, down, x, y, n) {
      write([y], onCall({ op: 'ffnSwiglu', gate: host(gate), up: host(up), down: host(down), x: f32(x, n * gate.cols), n }));
    },
    rmsNorm(x, w, out, n, nTok, eps) {
      write([out], onCall({ op: 'rmsNorm', x: f32(x, n * nTok), w: f32(w, n), n, nTok, eps, inPlace: x === out }));
    },
    rope(x, nTok, nHeads, headDim, rotDims, pos0, base, layout) {
      write([x], onCall({ op: 'rope', x: f32(x, nTok * nHeads * headDim), nTok, nHeads, headDim, rotDims, pos0, base, layout }));
    },
    attention(q, kCache, vCache, out, nTok, pos0, shape) {
      const cols = shape.nKvHead * shape.headDim;
      const k = cache(kCache, pos0 + nTok, cols);
      const v = cache(vCache, pos0 + nTok, cols);
      write([out], onCall({ op: 'attention', q: f32(q, nTok * shape.nHead * shape.headDim), k, v, nTok, pos0, shape }));
    },
    storeRows(x, dst, row0, nRows) {
      const ptrs = isQuantized(dst.dtype) ? [dst.data, dst.scales] : [dst.data];
      write(ptrs, onCall({ op: 'storeRows', x: f32(x, nRows * dst.cols), dst: cache(dst, dst.rows, dst.cols), row0, nRows }));
    },
    softmax(x, n, rows) {
      write([x], onCall({ op: 'softmax', x: f32(x, n * rows), n, rows }));
    },
    topK(x, n, k, outIdx, outVal) {
      write([outIdx, outVal], onCall({ op: 'topK', x: f32(x, n), n, k }));
    },
    addScaled(a, b, s, n) {
      write([a], onCall({ op: 'addScaled', a: f32(a, n), b: f32(b, n), s, n }));
    },
    ffnSwigluQ8: unsupported('ffnSwigluQ8'),
    getRow: unsupported('getRow'),
  };
}

/** The device calls a case makes, in order (outputs are not computed: only the first call's operands are its own). */
export function recordCalls(c: Case): Call[] {
  const calls: Call[] = [];
  const k = replayKernels((call) => { calls.push(call); return null; });
  const a = new Arena(k);
  try { c.exec(k, a); } finally { a.releaseAll(); }
  return calls;
}

const STOP = Symbol('next call recorded');

/** Rows of NaN after a bare f32 cache's live rows on the GPU. */
const POISON_ROWS = 3;

/** Runs a case's calls on the GPU one at a time (each call's weights uploaded for it), then returns its outputs. */
export async function runCase(gpu: WebGpuKernels, c: Case): Promise<Float32Array[]> {
  const done: Outputs[] = [];
  for (;;) {
    let next = 0;
    let pending: Call | undefined;
    const k = replayKernels((call) => {
      if (next < done.length) return done[next++];
      pending = call;
      throw STOP;
    });
    const a = new Arena(k);
    try {
      return c.exec(k, a);
    } catch (e) {
      if (e !== STOP) throw e;
    } finally {
      a.releaseAll();
    }
    done.push(await runCall(gpu, pending!));
  }
}


async function runCall(gpu: WebGpuKernels, call: Call): Promise<Outputs> {
  if (call.op === 'matmul') {
    const [w] = gpu.upload([call.w]);
    return gpu.matmul([{ w, x: call.x, n: call.n }]);
  }
  if (call.op === 'ffnSwiglu') {
    const [gate, up, down] = gpu.upload([call.gate, call.up, call.down]);
    return gpu.ffn([{ gate, up, down, x: call.x, n: call.n }]);
  }
  const trunk = new WebGpuTrunkKernels(gpu);
  const plan = new Plan();
  const input = (data: Float32Array): BufRef => plan.buffer(data.length, BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC, data.slice());
  const output = (floats: number): BufRef => plan.buffer(floats, BufferUsage.STORAGE | BufferUsage.COPY_SRC);
  const reads: BufRef[] = [];
  // a cache as the GPU lays it out: the stored bytes as words, then the scales
  const gpuCache = (c: Cache): GpuCache & { buf: BufRef } => {
    const words = new Float32Array(c.bytes.length / 4 + c.scales.length);
    new Uint8Array(words.buffer).set(c.bytes);
    words.set(c.scales, c.bytes.length / 4);
    return { buf: input(words), dtype: c.dtype, capacity: c.rows };
  };
  const read = (buf: BufRef, floats: number) => { plan.reads.push({ buf, floats }); reads.push(buf); };
  switch (call.op) {
    case 'rmsNorm': {
      const x = input(call.x);
      const out = call.inPlace ? x : output(call.x.length);
      await trunk.rmsNorm(plan, { buf: x }, { buf: input(call.w) }, { buf: out }, call.n, call.nTok, call.eps);
      read(out, call.x.length);
      break;
    }
    case 'rope': {
      const x = input(call.x);
      const table = input(ropeTable(call.base, call.rotDims, call.pos0 + call.nTok));
      await trunk.rope(plan, { buf: x }, { buf: table }, call.nTok, call.nHeads, call.headDim, call.rotDims, call.pos0, call.layout);
      read(x, call.x.length);
      break;
    }
    case 'attention': {
      const out = output(call.q.length);
      await trunk.attention(plan, { buf: input(call.q) }, gpuCache(call.k), gpuCache(call.v), { buf: out }, call.nTok, call.pos0, call.shape);
      read(out, call.q.length);
      break;
    }
    case 'storeRows': {
      const dst = gpuCache(call.dst);
      await trunk.storeRows(plan, { buf: input(call.x) }, dst, call.dst.cols, call.row0, call.nRows);
      const words = call.dst.bytes.length / 4;
      read(dst.buf, words + call.dst.scales.length);
      const [all] = await gpu.run(plan, [{ read: 0, offset: 0, floats: words + call.dst.scales.length }]);
      const bytes = new Uint8Array(all.buffer, all.byteOffset, call.dst.bytes.length).slice();
      return isQuantized(call.dst.dtype) ? [bytes, all.slice(words)] : [bytes];
    }
    case 'softmax': {
      const x = input(call.x);
      await trunk.softmax(plan, { buf: x }, call.n, call.rows);
      read(x, call.x.length);
      break;
    }
    case 'topK': {
      const idx = output(call.k);
      const val = output(call.k);
      await trunk.topK(plan, { buf: input(call.x) }, call.n, call.k, 1, { buf: idx }, { buf: val });
      read(idx, call.k);
      read(val, call.k);
      const [i, v] = await gpu.run(plan, reads.map((_, r) => ({ read: r, offset: 0, floats: call.k })));
      return [new Int32Array(i.buffer, i.byteOffset, i.length), v];
    }
    case 'addScaled': {
      const a = input(call.a);
      await trunk.addScaled(plan, { buf: a }, { buf: input(call.b) }, call.s, call.n);
      read(a, call.n);
      break;
    }
  }
  return gpu.run(plan, reads.map((_, r) => ({ read: r, offset: 0, floats: plan.reads[r].floats })));
}

// Runs conformance cases, written against the synchronous Kernels interface, on the asynchronous WebGPU kernels:
// a case's exec runs over a plain heap until its next kernel call, which is recorded (operands copied out of the
// heap), computed on the GPU, and written back where the case reads it on the next run; the last run returns the
// case's outputs. Cases that chain kernels (one's output feeding the next) thus see the GPU's values throughout.
// Cases and verify() are those of every other executor, unchanged.
import { QK, isQuantized, quantBytes } from '../../../../src/format/quant';
import { Heap } from '../../../../src/kernels/heap';
import type { AttentionShape, Kernels, KvRows, Mat, Ptr, RopeLayout } from '../../../../src/kernels/types';
import { BufferUsage } from '../../../../gpu-backend/devices/webgpu/adapter';
import { Plan, type BufRef, type WebGpuKernels } from '../../../../gpu-backend/devices/webgpu/kernels';
import type { HostTensor } from '../../../../gpu-backend/devices/webgpu/layout';
import { ropeTable } from '../../../../gpu-backend/devices/webgpu/rope-table';
import { WebGpuTrunkKernels } from '../../../../gpu-backend/devices/webgpu/trunk-kernels';
import type { Case } from '../cases-matmul';
import { Arena } from '../harness';

/** The kernels the device implements; a case that calls anything else is not a device case. */
export const DEVICE_OPS = ['matmul', 'ffnSwiglu', 'rmsNorm', 'rope', 'attention', 'softmax', 'topK', 'addScaled'] as const;

/**
 * Cases of a device op that the device does not run: the webgpu trunk keeps its KV cache in f32 (the backend
 * prefills and streams rows in the Worker's cache type, converting on the host), so attention over f16 / q8_0 /
 * q4_0 caches stays with the CPU executors.
 */
const HOST_ONLY = /^attention (f16|q8_0|q4_0) KV cache /;

export function isDeviceCase(c: Case): boolean {
  return DEVICE_OPS.some((op) => c.name.startsWith(`${op} `)) && !HOST_ONLY.test(c.name);
}

export type Call =
  | { op: 'matmul'; w: HostTensor; x: Float32Array; n: number }
  | { op: 'ffnSwiglu'; gate: HostTensor; up: HostTensor; down: HostTensor; x: Float32Array; n: number }
  | { op: 'rmsNorm'; x: Float32Array; w: Float32Array; n: number; nTok: number; eps: number; inPlace: boolean }
  | { op: 'rope'; x: Float32Array; nTok: number; nHeads: number; headDim: number; rotDims: number; pos0: number; base: number; layout: RopeLayout }
  | { op: 'attention'; q: Float32Array; k: Float32Array; v: Float32Array; nTok: number; pos0: number; shape: AttentionShape }
  | { op: 'softmax'; x: Float32Array; n: number; rows: number }
  | { op: 'topK'; x: Float32Array; n: number; k: number }
  | { op: 'addScaled'; a: Float32Array; b: Float32Array; s: number; n: number };

/** What one call leaves in the heap, in the order replayKernels writes it back (topK: indices, then values). */
type Outputs = (Float32Array | Int32Array)[];

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
    out?.forEach((o, i) => (o instanceof Int32Array ? heap.i32(ptrs[i], o.length) : heap.f32(ptrs[i], o.length)).set(o as never));
  };
  const f32Cache = (c: KvRows, n: number): Float32Array => {
    if (typeof c !== 'number' && c.dtype !== 'f32') throw new Error(`attention over a ${c.dtype} KV cache is not a device kernel (f32 only)`);
    return f32(typeof c === 'number' ? c : c.data, n);
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
      const live = (pos0 + nTok) * shape.nKvHead * shape.headDim;
      const k = f32Cache(kCache, live);
      const v = f32Cache(vCache, live);
      write([out], onCall({ op: 'attention', q: f32(q, nTok * shape.nHead * shape.headDim), k, v, nTok, pos0, shape }));
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
    storeRows: unsupported('storeRows'),
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

/** Rows of NaN after a KV cache's live rows on the GPU: a kernel that reads past the causal end returns NaN. */
const POISON_ROWS = 3;

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
      const kv = call.shape.nKvHead * call.shape.headDim;
      const poisoned = (live: Float32Array) => {
        const all = new Float32Array(live.length + POISON_ROWS * kv).fill(NaN);
        all.set(live);
        return input(all);
      };
      const out = output(call.q.length);
      await trunk.attention(plan, { buf: input(call.q) }, { buf: poisoned(call.k) }, { buf: poisoned(call.v) }, { buf: out }, call.nTok, call.pos0, call.shape);
      read(out, call.q.length);
      break;
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

// Runs conformance cases, written against the synchronous Kernels interface, on the asynchronous WebGPU kernels:
// a case's exec runs twice over a plain heap, first recording the operands of each matmul / ffnSwiglu call, then,
// once the GPU has computed them, writing the GPU's outputs where the case reads them. Cases and verify() are
// those of every other executor, unchanged.
import { QK, isQuantized, quantBytes } from '../../../../src/format/quant';
import { Heap } from '../../../../src/kernels/heap';
import type { Kernels, Mat, Ptr } from '../../../../src/kernels/types';
import type { WebGpuKernels } from '../../../../gpu-backend/devices/webgpu/kernels';
import type { HostTensor } from '../../../../gpu-backend/devices/webgpu/layout';
import type { Case } from '../cases-matmul';
import { Arena } from '../harness';

/** The kernels the device implements; a case that calls anything else is not a device case. */
export const DEVICE_OPS = ['matmul', 'ffnSwiglu'] as const;

export function isDeviceCase(c: Case): boolean {
  return DEVICE_OPS.some((op) => c.name.startsWith(`${op} `));
}

export type Call =
  | { op: 'matmul'; w: HostTensor; x: Float32Array; n: number; y: Ptr }
  | { op: 'ffnSwiglu'; gate: HostTensor; up: HostTensor; down: HostTensor; x: Float32Array; n: number; y: Ptr };

/** Kernels over its own heap that record device calls (outputs left as they are) or replay given outputs. */
function replayKernels(onCall: (c: Call) => Float32Array | null): Kernels {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  const heap = new Heap(memory, 1024);
  const host = (w: Mat): HostTensor => ({
    dtype: w.dtype,
    rows: w.rows,
    cols: w.cols,
    data: heap.u8(w.data, quantBytes(w.dtype, w.rows * w.cols)).slice(),
    scales: isQuantized(w.dtype) ? heap.f32(w.scales, (w.rows * w.cols) / QK).slice() : null,
  });
  const write = (y: Ptr, out: Float32Array | null) => { if (out) heap.f32(y, out.length).set(out); };
  const unsupported = (op: string) => () => { throw new Error(`${op} is not a device kernel (the device runs ${DEVICE_OPS.join(', ')})`); };
  return {
    name: 'webgpu (replay)',
    heap,
    matmul(w, x, y, n) {
      write(y, onCall({ op: 'matmul', w: host(w), x: heap.f32(x, n * w.cols).slice(), n, y }));
    },
    ffnSwiglu(gate, up, down, x, y, n) {
      write(y, onCall({ op: 'ffnSwiglu', gate: host(gate), up: host(up), down: host(down), x: heap.f32(x, n * gate.cols).slice(), n, y }));
    },
    ffnSwigluQ8: unsupported('ffnSwigluQ8'),
    getRow: unsupported('getRow'),
    rmsNorm: unsupported('rmsNorm'),
    rope: unsupported('rope'),
    attention: unsupported('attention'),
    storeRows: unsupported('storeRows'),
    softmax: unsupported('softmax'),
    topK: unsupported('topK'),
    addScaled: unsupported('addScaled'),
  };
}

/** The device calls a case makes, in order. */
export function recordCalls(c: Case): Call[] {
  const calls: Call[] = [];
  const k = replayKernels((call) => { calls.push(call); return null; });
  const a = new Arena(k);
  try { c.exec(k, a); } finally { a.releaseAll(); }
  return calls;
}

/** Runs a case's calls on the GPU (each call's weights uploaded for it), then returns the case's outputs. */
export async function runCase(gpu: WebGpuKernels, c: Case): Promise<Float32Array[]> {
  const outputs: Float32Array[] = [];
  for (const call of recordCalls(c)) {
    if (call.op === 'matmul') {
      const [w] = gpu.upload([call.w]);
      outputs.push(...(await gpu.matmul([{ w, x: call.x, n: call.n }])));
    } else {
      const [gate, up, down] = gpu.upload([call.gate, call.up, call.down]);
      outputs.push(...(await gpu.ffn([{ gate, up, down, x: call.x, n: call.n }])));
    }
  }
  let next = 0;
  const k = replayKernels(() => outputs[next++]);
  const a = new Arena(k);
  try { return c.exec(k, a); } finally { a.releaseAll(); }
}

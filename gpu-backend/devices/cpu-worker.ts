// One thread of the cpu device: its own instance of the Worker's WASM kernel module, holding the experts
// assigned to it, running the fused SwiGLU FFN on request (on q8_0 blocks or f32 rows). Messages are handled one
// at a time, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { uploadExpert } from '../../src/engine/model';
import { createWasmKernels, type WasmVariant } from '../../src/kernels/wasm';
import type { Mat, Ptr } from '../../src/kernels/types';
import { activationsToF32, type Activations } from '../../src/protocol/activations';
import type { CpuWorkerReply, CpuWorkerRequest } from './cpu-messages';

const { module, variant } = workerData as { module: WebAssembly.Module; variant: WasmVariant };
const k = createWasmKernels(module, variant);
const experts = new Map<string, { gate: Mat; up: Mat; down: Mat }>(); // "layer/expert"
const port = parentPort!;

port.on('message', (msg: CpuWorkerRequest) => {
  let reply: CpuWorkerReply;
  const transfer: ArrayBuffer[] = [];
  try {
    if (msg.type === 'load') {
      const before = k.heap.usedBytes;
      experts.set(`${msg.layer}/${msg.expert}`, uploadExpert(k, msg.entries, msg.bytes));
      reply = { id: msg.id, ok: true, bytes: k.heap.usedBytes - before };
    } else {
      const ys = msg.groups.map((g) => {
        const w = experts.get(`${msg.layer}/${g.expert}`);
        if (!w) throw new Error(`expert ${msg.layer}/${g.expert} is not resident on this thread`);
        return ffn(w, g.x, g.n);
      });
      for (const y of ys) transfer.push(y.buffer as ArrayBuffer);
      reply = { id: msg.id, ok: true, ys };
    }
  } catch (e) {
    reply = { id: msg.id, ok: false, error: (e as Error).message ?? String(e) };
  }
  port.postMessage(reply, transfer);
});

// y (n, H) = down(silu(gate x) * up x) for x (n, H); scratch taken from the heap for the call and given back.
// q8_0 rows go to the kernel as blocks (ffnSwigluQ8: the Worker's quantization is the kernel's, so no round trip
// through f32); f32 rows as they are; f16 rows (no client of ours sends them) are widened first.
function ffn(w: { gate: Mat; up: Mat; down: Mat }, x: Activations, n: number): Float32Array {
  const H = w.gate.cols;
  const len = x.dtype === 'q8_0' ? x.qs.length : x.data.length;
  if (len !== n * H) throw new RangeError(`expert input holds ${len} values, expected (${n}, ${H})`);
  const y = new Float32Array(n * H);
  if (n === 0) return y;
  const taken: Ptr[] = [];
  const take = (bytes: number): Ptr => {
    const p = k.heap.alloc(bytes);
    taken.push(p);
    return p;
  };
  try {
    const yp = take(n * H * 4);
    if (x.dtype === 'q8_0') {
      const xq = take(x.qs.length);
      const xd = take(x.d.length * 2);
      k.heap.u8(xq, x.qs.length).set(new Uint8Array(x.qs.buffer, x.qs.byteOffset, x.qs.length));
      k.heap.u8(xd, x.d.length * 2).set(new Uint8Array(x.d.buffer, x.d.byteOffset, x.d.length * 2));
      k.ffnSwigluQ8(w.gate, w.up, w.down, xq, xd, yp, n);
    } else {
      const xp = take(n * H * 4);
      k.heap.f32(xp, n * H).set(activationsToF32(x));
      k.ffnSwiglu(w.gate, w.up, w.down, xp, yp, n);
    }
    y.set(k.heap.f32(yp, n * H));
  } finally {
    for (const p of taken.reverse()) k.heap.release(p);
  }
  return y;
}

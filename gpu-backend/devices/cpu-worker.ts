// One thread of the cpu device: its own instance of the Worker's WASM kernel module, holding the experts
// assigned to it, running the fused SwiGLU FFN on request. Messages are handled one at a time, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { uploadExpert } from '../../src/engine/model';
import { createWasmKernels, type WasmVariant } from '../../src/kernels/wasm';
import type { Mat } from '../../src/kernels/types';
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
function ffn(w: { gate: Mat; up: Mat; down: Mat }, x: Float32Array, n: number): Float32Array {
  const H = w.gate.cols;
  if (x.length !== n * H) throw new RangeError(`expert input holds ${x.length} floats, expected (${n}, ${H})`);
  const y = new Float32Array(n * H);
  if (n === 0) return y;
  const xp = k.heap.alloc(n * H * 4);
  const yp = k.heap.alloc(n * H * 4);
  try {
    k.heap.f32(xp, n * H).set(x);
    k.ffnSwiglu(w.gate, w.up, w.down, xp, yp, n);
    y.set(k.heap.f32(yp, n * H));
  } finally {
    k.heap.release(yp);
    k.heap.release(xp);
  }
  return y;
}

// One thread of the cpu device: its own instance of the Worker's WASM kernel module, holding the experts
// assigned to it, running the fused SwiGLU FFN on request (on q8_0 blocks or f32 rows). Messages are handled one
// at a time, in order.
import { parentPort, workerData } from 'node:worker_threads';
import { ffnOnActivations } from '../../src/engine/expert-ffn';
import { uploadExpert, type ExpertWeights } from '../../src/engine/model';
import { createWasmKernels, type WasmVariant } from '../../src/kernels/wasm';
import type { CpuWorkerReply, CpuWorkerRequest } from './cpu-messages';

const { module, variant } = workerData as { module: WebAssembly.Module; variant: WasmVariant };
const k = createWasmKernels(module, variant);
const experts = new Map<string, ExpertWeights>(); // "layer/expert"
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
        return ffnOnActivations(k, w, g.x, g.n);
      });
      for (const y of ys) transfer.push(y.buffer as ArrayBuffer);
      reply = { id: msg.id, ok: true, ys };
    }
  } catch (e) {
    reply = { id: msg.id, ok: false, error: (e as Error).message ?? String(e) };
  }
  port.postMessage(reply, transfer);
});

// llama.cpp (node-llama-cpp) in a child process for bench:shapes, driven by llama-process.ts over IPC: a native
// abort (a ggml assert: q8_0 KV + flash attention at granite shapes hit one) ends this process, not the run, and
// llama.cpp's memory and threads stay out of the process that times moe-edge and the streaming read.
import { llamaRound } from '../e2e/llama-round';
import { openLlama, type LlamaSession } from '../peers/llama';

export type LlamaRequest =
  | { id: number; op: 'open'; gguf: string; opts: Parameters<typeof openLlama>[1] }
  | { id: number; op: 'round'; prompt: number[]; decode: number }
  | { id: number; op: 'dispose' };

let session: LlamaSession | null = null;

process.on('message', async (req: LlamaRequest) => {
  try {
    let result: unknown = null;
    if (req.op === 'open') {
      await session?.dispose();
      session = null;
      session = await openLlama(req.gguf, req.opts);
    } else if (req.op === 'round') {
      if (!session) throw new Error('llama.cpp: no model open');
      result = await llamaRound(session, req.prompt, req.decode, () => performance.now());
    } else {
      await session?.dispose();
      session = null;
    }
    process.send!({ id: req.id, ok: true, result });
  } catch (e) {
    process.send!({ id: req.id, ok: false, error: (e as Error).message });
  }
});

// The four engines of bench:shapes over one model, behind one interface: moe-edge in Node and in local workerd (the
// KV type is per round), llama.cpp (node-llama-cpp, in a child process) and wllama (their KV type is per context:
// reopened by setKv).
import { isQuantized } from '../../src/format/quant';
import type { KvCacheType } from '../../src/engine/kv-cache';
import type { LocalModel } from '../../src/engine/load';
import { engineRound, type RoundResult } from '../e2e/engine-round';
import { startWorkerdEngine } from '../e2e/workerd';
import { wllamaPromptText, wllamaRound } from '../e2e/wllama-round';
import type { LlamaKvType } from '../peers/llama';
import { LlamaProcess } from './llama-process';
import { startWllama, wllamaUnavailable, type WllamaPeer } from '../peers/wllama';
import type { ByteLayout } from './bound';
import type { ShapesModel } from './models';

export const NODE = 'moe-edge (Node)';
export const WORKERD = 'moe-edge (workerd)';
export const LLAMA = 'llama.cpp (node-llama-cpp)';
export const WLLAMA = 'wllama (llama.cpp WASM, Chromium)';

export interface ShapesEngine {
  readonly name: string;
  /** whose bytes its decode bound counts: our kernel heap, or the GGUF's ggml blocks */
  readonly layout: ByteLayout;
  /** the attention it runs with the current KV type (llama.cpp: flash attention where a quantized V needs it) */
  attention: string;
  /** before the rounds of one KV type; throws when the engine cannot run it */
  setKv(kv: KvCacheType): Promise<void>;
  round(prompt: number[], decode: number): Promise<RoundResult>;
  dispose(): Promise<void>;
}

export interface EngineSetup { maxPrompt: number; decode: number; wllama: boolean; wllamaMaxPrompt: number }

/** llama.cpp runs a quantized V cache only with flash attention; f32/f16 keep the reference settings (none). */
const flashFor = (kv: KvCacheType) => isQuantized(kv);
const attentionOf = (kv: KvCacheType) => (flashFor(kv) ? 'flash attention' : 'standard (no flash attention)');

export async function openEngines(m: ShapesModel, ours: LocalModel, s: EngineSetup, log: (line: string) => void): Promise<{ engines: ShapesEngine[]; notes: string[]; workerdKernels: string }> {
  const notes: string[] = [];
  const ctx = s.maxPrompt + s.decode + 16;
  let kv: KvCacheType = 'f32';
  const now = () => performance.now();
  const node: ShapesEngine = {
    name: NODE, layout: 'heap', attention: 'moe-edge', async setKv(t) { kv = t; },
    round: (p, n) => engineRound(ours, p, n, now, kv),
    dispose: async () => {},
  };
  log(`${m.name}: starting the bench Worker and sending it the model`);
  const w = await startWorkerdEngine(m.dir);
  const workerd: ShapesEngine = {
    name: WORKERD, layout: 'heap', attention: 'moe-edge', async setKv(t) { kv = t; },
    round: (p, n) => w.round(p, n, kv),
    dispose: () => w.dispose(),
  };
  const llama = new LlamaProcess(); // its own process: a native abort fails its rounds, not the run
  const llamaEngine: ShapesEngine = {
    name: LLAMA, layout: 'gguf', attention: '',
    async setKv(t) {
      await llama.open(m.gguf, { contextSize: ctx, batchSize: s.maxPrompt, kvCacheType: t.toUpperCase() as LlamaKvType, flashAttention: flashFor(t) });
      this.attention = attentionOf(t);
    },
    round: (p, n) => llama.round(p, n),
    dispose: () => llama.dispose(),
  };
  const engines = [node, workerd, llamaEngine];
  const why = s.wllama ? wllamaUnavailable() : 'skipped (--no-wllama)';
  if (why) notes.push(`wllama not run: ${why}`);
  else {
    let peer: WllamaPeer | null = null;
    const texts = new Map<number, string>();
    engines.push({
      name: WLLAMA, layout: 'gguf', attention: '',
      async setKv(t) {
        await peer?.dispose();
        peer = null;
        // n_batch = the longest prompt it runs, so its prefill is one batch as llama.cpp's is
        peer = await startWllama(m.gguf, ctx, { kvCacheType: t, flashAttention: flashFor(t), batch: Math.min(s.maxPrompt, s.wllamaMaxPrompt) });
        this.attention = `${attentionOf(t)}, wllama ${peer.version}`;
      },
      async round(p, n) {
        let text = texts.get(p.length);
        if (text === undefined) texts.set(p.length, (text = wllamaPromptText(ours, p)));
        return wllamaRound(peer!, text, p.length, n);
      },
      async dispose() { await peer?.dispose(); },
    });
  }
  return { engines, notes, workerdKernels: w.kernels };
}

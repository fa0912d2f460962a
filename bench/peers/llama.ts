// llama.cpp in Node (node-llama-cpp's prebuilt CPU binary, installed into bench/peers by `npm run setup:peers`):
// loading a GGUF with reference settings, per-position logits, greedy decoding and timed prefill/decode.
// Shared by the parity test (test/process/peers) and the benchmarks (bench/e2e, bench/kernels).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import { argmax } from '../../src/engine/sampler';

/** True when `npm run setup:peers` has installed node-llama-cpp and its linux-x64 binary. */
export function llamaInstalled(): boolean {
  const root = fileURLToPath(new URL('./node_modules/', import.meta.url));
  return existsSync(`${root}node-llama-cpp/package.json`) && existsSync(`${root}@node-llama-cpp/linux-x64/package.json`);
}

let llamaPromise: Promise<Llama> | null = null;

/** The prebuilt CPU build only: never compile, never download (the machines are offline). */
export function loadLlama(): Promise<Llama> {
  llamaPromise ??= import('node-llama-cpp').then(({ getLlama, LlamaLogLevel }) =>
    getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: LlamaLogLevel.error, maxThreads: 1 }),
  );
  return llamaPromise;
}

/** llama.cpp's KV cache types that moe-edge also has (KV_CACHE_TYPE); a quantized V cache needs flashAttention. */
export type LlamaKvType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0';

export interface LlamaSession {
  model: LlamaModel;
  context: LlamaContext;
  sequence: LlamaContextSequence;
  vocabSize: number;
  dispose(): Promise<void>;
}

/**
 * One model, one context, one sequence. threads: 1 (the comparison is single-thread). The reference settings
 * of the shared fixtures: F32 KV cache and no flash attention (the defaults shift logits by ~5e-3); kvCacheType
 * and flashAttention override them for the KV cache parity test.
 */
export async function openLlama(modelPath: string, opts: { contextSize: number; batchSize?: number; threads?: number; kvCacheType?: LlamaKvType; flashAttention?: boolean }): Promise<LlamaSession> {
  const llama = await loadLlama();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
  const context = await model.createContext({
    contextSize: opts.contextSize,
    batchSize: opts.batchSize ?? Math.min(opts.contextSize, 512),
    threads: { ideal: opts.threads ?? 1, min: opts.threads ?? 1 },
    flashAttention: opts.flashAttention ?? false,
    experimentalKvCacheKeyType: opts.kvCacheType ?? 'F32',
    experimentalKvCacheValueType: opts.kvCacheType ?? 'F32',
    sequences: 1,
  });
  const sequence = context.getSequence();
  // the logits row length: the embedding's rows (ggml dims [n_embd, n_vocab])
  const vocabSize = Number(model.fileInfo.tensorInfo?.find((t) => t.name === 'token_embd.weight')?.dimensions[1]);
  if (!Number.isInteger(vocabSize) || vocabSize <= 0) throw new Error(`${modelPath}: no token_embd.weight to size the vocabulary`);
  return {
    model,
    context,
    sequence,
    vocabSize,
    async dispose() {
      sequence.dispose();
      await context.dispose();
      await model.dispose();
    },
  };
}

function logitsRow(map: Map<number, number> | undefined, vocab: number): Float32Array {
  if (!map) throw new Error('llama.cpp returned no logits');
  const row = new Float32Array(vocab);
  for (const [tok, v] of map) row[tok] = v;
  return row;
}

/** logits[i] after reading tokens[0..i], evaluated as one batch on a cleared sequence. */
export async function llamaLogits(s: LlamaSession, tokens: readonly number[]): Promise<Float32Array[]> {
  await s.sequence.clearHistory();
  const res = await s.sequence.controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }] as const) as never);
  return res.map((r) => logitsRow(r?.next.logits, s.vocabSize));
}

export { argmax };

/**
 * Greedy decoding driven from here (argmax of llama.cpp's raw logits, no sampler in between): `n` new tokens
 * after `prompt`, stopping after an id in `stopIds`. steps[i] = the logits that chose tokens[i].
 */
export async function llamaGreedy(s: LlamaSession, prompt: readonly number[], n: number, stopIds: readonly number[] = []): Promise<{ tokens: number[]; steps: Float32Array[] }> {
  await s.sequence.clearHistory();
  const last = (await s.sequence.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { logits: true } }] : t)) as never)).at(-1);
  let logits = logitsRow(last?.next.logits, s.vocabSize);
  const tokens: number[] = [];
  const steps: Float32Array[] = [];
  for (;;) {
    const t = argmax(logits);
    tokens.push(t);
    steps.push(logits);
    if (tokens.length >= n || stopIds.includes(t)) break;
    const r = await s.sequence.controlledEvaluate([[t, { generateNext: { logits: true } }]] as never);
    logits = logitsRow(r[0]?.next.logits, s.vocabSize);
  }
  return { tokens, steps };
}

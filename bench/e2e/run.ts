// End-to-end benchmark: prefill tokens/s (128-token prompt) and decode tokens/s (128 greedy tokens) of the
// default model, single thread, in moe-edge/Node, moe-edge/workerd, llama.cpp (node-llama-cpp) and wllama
// (llama.cpp in WASM, headless Chromium) on the GGUF exported from the same q8_0 weights. Engines take turns
// round by round, so all see the same machine load.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadTextModel } from '../../src/engine/load';
import { fsSource } from '../../src/store/source-fs';
import { kernelsLabel } from '../../src/kernels/fused-dot';
import { makeKernels } from '../../tools/kernels-node';
import { exportGgufFile } from '../../tools/export-gguf';
import { median } from '../matvec/measure';
import { promptOf } from '../prompt-of';
import { openLlama } from '../peers/llama';
import { startWllama, wllamaUnavailable } from '../peers/wllama';
import { engineRound, type RoundResult } from './engine-round';
import { llamaRound } from './llama-round';
import { startWorkerdEngine } from './workerd';
import { wllamaPromptText, wllamaRound } from './wllama-round';

export interface E2eRecord {
  engine: string;
  prefill_tps: number; // median over rounds
  decode_tps: number;
  prefill_ratio_to_llama: number | null; // median over rounds of (this / llama.cpp in the same round)
  decode_ratio_to_llama: number | null;
  decode_ratio_to_wllama: number | null; // (this / wllama), per round then the median; null without wllama
  rounds: { prefill_ms: number[]; decode_ms: number[] };
  note?: string;
}

export interface E2eOptions { rounds: number; promptTokens: number; decodeTokens: number; workDir: string; wllama: boolean }

// a prompt of ordinary prose, as many words as make the wanted length in tokens (the model is small; the text only sets routing)
const TEXT = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had nothing before us. ';

export async function runE2e(modelDir: string, opts: E2eOptions, log: (s: string) => void): Promise<{ records: E2eRecord[]; model: string; kernels: Record<string, string>; notes: string[] }> {
  await mkdir(opts.workDir, { recursive: true });
  const gguf = join(opts.workDir, 'default.gguf');
  await exportGgufFile(modelDir, gguf);
  const kernels = await makeKernels();
  const ours = await loadTextModel(fsSource(modelDir), kernels);
  // whole words that tokenize to the length (bench/prompt-of.ts): wllama re-tokenizes the text, and a cut through a
  // word re-tokenizes to another count
  const prompt = ours.encode(promptOf(ours.encode, opts.promptTokens, TEXT.trim().split(' ')).text);
  if (prompt.length !== opts.promptTokens) throw new Error(`e2e: no whole-word prompt of ${opts.promptTokens} tokens (got ${prompt.length})`);
  const ctx = opts.promptTokens + opts.decodeTokens;
  const llama = await openLlama(gguf, { contextSize: ctx + 16, batchSize: opts.promptTokens });
  const workerd = await startWorkerdEngine(modelDir);
  const engines: [string, (p: number[], n: number) => Promise<RoundResult>][] = [
    ['moe-edge (Node)', (p, n) => engineRound(ours, p, n, () => performance.now())],
    ['moe-edge (workerd)', (p, n) => workerd.round(p, n)],
    ['llama.cpp (node-llama-cpp)', (p, n) => llamaRound(llama, p, n, () => performance.now())],
  ];
  const notes: string[] = [];
  const unavailable = opts.wllama ? wllamaUnavailable() : 'skipped (--no-wllama)';
  const wllama = unavailable ? null : await startWllama(gguf, ctx + 16);
  if (wllama) {
    const text = wllamaPromptText(ours, prompt);
    engines.push([`wllama (llama.cpp WASM ${wllama.version}, Chromium)`, (_p, n) => wllamaRound(wllama, text, prompt.length, n)]);
  } else notes.push(`wllama not run: ${unavailable}`);
  const runs = new Map<string, RoundResult[]>(engines.map(([name]) => [name, []]));
  try {
    for (const [, run] of engines) await run(prompt, 8); // warm-up: JIT tiers, first touch
    for (let r = 0; r < opts.rounds; r++) {
      for (const [name, run] of engines) {
        const res = await run(prompt, opts.decodeTokens);
        runs.get(name)!.push(res);
        log(`e2e round ${r + 1}/${opts.rounds} ${name}: prefill ${(opts.promptTokens / res.prefillMs * 1000).toFixed(0)} tok/s, decode ${(opts.decodeTokens / res.decodeMs * 1000).toFixed(0)} tok/s`);
      }
    }
  } finally {
    await workerd.dispose();
    await llama.dispose();
    await wllama?.dispose();
  }
  const ref = runs.get('llama.cpp (node-llama-cpp)')!;
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const wl = [...runs].find(([name]) => name.startsWith('wllama'))?.[1];
  const records = [...runs].map(([engine, rs]): E2eRecord => {
    const ratioTo = (to: RoundResult[] | undefined, f: (x: RoundResult) => number) => (!to || to === rs ? null : round3(median(rs.map((x, i) => f(to[i]) / f(x)))));
    const ratio = (f: (x: RoundResult) => number) => ratioTo(ref, f);
    return {
      engine,
      prefill_tps: round1(median(rs.map((x) => (opts.promptTokens / x.prefillMs) * 1000))),
      decode_tps: round1(median(rs.map((x) => (opts.decodeTokens / x.decodeMs) * 1000))),
      prefill_ratio_to_llama: ratio((x) => x.prefillMs),
      decode_ratio_to_llama: ratio((x) => x.decodeMs),
      decode_ratio_to_wllama: ratioTo(wl, (x) => x.decodeMs),
      rounds: { prefill_ms: rs.map((x) => round3(x.prefillMs)), decode_ms: rs.map((x) => round3(x.decodeMs)) },
      ...(rs[0].tokens.length === 0 || same(rs[0].tokens, ref[0].tokens) ? {} : { note: 'greedy tokens differ from llama.cpp\'s' }),
    };
  });
  return { records, model: `${ours.manifest.name} (hidden ${ours.manifest.architecture.hiddenSize}, ${ours.manifest.architecture.numLayers} layers, ${ours.manifest.architecture.numExperts} experts top-${ours.manifest.architecture.topK}, ${ours.manifest.quant.experts})`, kernels: { 'moe-edge (Node)': kernelsLabel(kernels), 'moe-edge (workerd)': workerd.kernels }, notes };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

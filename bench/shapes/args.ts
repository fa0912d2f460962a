// Command-line options of `npm run bench:shapes`, parsed once into a frozen object; every refusal names the option
// and what it accepts, before any model is loaded.
import { parseArgs } from 'node:util';
import { KV_CACHE_TYPES, type KvCacheType } from '../../src/engine/kv-cache';

export const GRANITE_MODELS = ['.cache/models/granite-shaped-q4_0', '.cache/models/granite-shaped-q8_0'];
export const DEFAULT_MODEL = 'models/default';
/**
 * The default run fits ~45 min on a shared 2-core machine (bench/README.md): 3 rounds of an f32 KV cache, the exact
 * reference and the one type both peers run at granite shapes (llama.cpp aborts with q8_0/q4_0 + flash attention there,
 * natively and in wllama). `--kv all` adds f16, q8_0 (the Worker's default) and q4_0, each costing as much again.
 */
export const DEFAULT_KV: readonly KvCacheType[] = ['f32'];

export interface ShapesOptions {
  models: readonly string[]; // model folders, granite-shaped first unless given
  defaultModel: boolean; // also run models/default (its context, 512, skips the 1,024-token cases)
  kv: readonly KvCacheType[];
  rounds: number;
  prompts: readonly number[]; // prompt lengths: prefill of each, then decode after it
  decode: number; // decode tokens after each prompt
  streamMs: number; // the streaming-read yardstick around each engine round: half before, half after, 3 slices each
  wllama: boolean;
  wllamaMaxPrompt: number; // wllama runs only the prompts up to this length (its 1,024-token round takes ~7 min at granite shapes)
  note: string | null; // goes into bench/results/history.md's line
  record: boolean;
}

export function parseShapesArgs(argv: readonly string[]): Readonly<ShapesOptions> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      model: { type: 'string', multiple: true },
      'no-default-model': { type: 'boolean', default: false },
      kv: { type: 'string' },
      rounds: { type: 'string' },
      prompts: { type: 'string' },
      decode: { type: 'string' },
      'stream-ms': { type: 'string' },
      'no-wllama': { type: 'boolean', default: false },
      'wllama-max-prompt': { type: 'string' },
      note: { type: 'string' },
      'no-record': { type: 'boolean', default: false },
    },
  });
  return Object.freeze({
    models: values.model ?? GRANITE_MODELS,
    defaultModel: !values['no-default-model'],
    kv: parseKv(values.kv),
    rounds: positiveInt('--rounds', values.rounds, 3),
    prompts: list('--prompts', values.prompts, [128, 1024]),
    decode: positiveInt('--decode', values.decode, 128),
    streamMs: positiveInt('--stream-ms', values['stream-ms'], 150),
    wllama: !values['no-wllama'],
    wllamaMaxPrompt: positiveInt('--wllama-max-prompt', values['wllama-max-prompt'], 128),
    note: values.note ?? null,
    record: !values['no-record'],
  });
}

function parseKv(v: string | undefined): KvCacheType[] {
  if (v === undefined) return [...DEFAULT_KV];
  if (v === 'all') return [...KV_CACHE_TYPES];
  const out = v.split(',').map((s) => s.trim());
  for (const t of out) {
    if (!KV_CACHE_TYPES.includes(t as KvCacheType)) throw new Error(`unknown --kv value ${JSON.stringify(t)}: one or more of ${KV_CACHE_TYPES.join(', ')} (comma-separated), or all`);
  }
  return [...new Set(out as KvCacheType[])];
}

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function list(name: string, v: string | undefined, dflt: number[]): number[] {
  return v === undefined ? dflt : v.split(',').map((s) => positiveInt(name, s.trim(), 0));
}

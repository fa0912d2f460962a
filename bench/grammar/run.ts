// Cost of constrained decoding with xgrammar (src/grammar): per vocabulary (the default model's and granite's
// 49,155-entry one), the one-time tokenizer setup, per-schema compile time, the WASM memory that setup and a
// compiled grammar with its matcher take, and the per-token cost of a step (token mask + applying it to a logits
// row + accepting the token), walking each grammar with random allowed tokens (no model: the grammar's cost alone).
// Writes bench/results/grammar.{json,md}. Usage: npx tsx bench/grammar/run.ts [--schemas 20] [--hold 60] [--granite <model dir>]
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { Vocabulary } from '../../src/engine/api';
import { loadCodec } from '../../src/engine/load';
import { seededRandom } from '../../src/engine/sampler';
import { provideXgrammarWasmFromFile } from '../../src/grammar/load-node';
import { compileGrammar, grammarMemoryBytes, grammarsAvailable } from '../../src/grammar/xgrammar';
import { readManifest } from '../../src/store/source';
import { fsSource } from '../../src/store/source-fs';
import { machineInfo } from '../matvec/machine';

const { values } = parseArgs({ options: { schemas: { type: 'string', default: '20' }, hold: { type: 'string', default: '60' }, granite: { type: 'string', default: '.cache/models/granite-shaped-q4_0' } } });
const SCHEMAS = Number(values.schemas);
const HOLD = Number(values.hold);
const MIB = 1024 * 1024;

/** The schema family of test/unit/api/structured.test.ts, smaller: objects of enums, bounded numbers, short strings, arrays, nesting. */
function schemaOf(rand: () => number, depth = 0): z.ZodType {
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  if (depth === 0 || (depth === 1 && rand() < 0.3)) {
    const shape: Record<string, z.ZodType> = {};
    for (let i = 0, n = int(2, 5); i < n; i++) shape[`field_${i}`] = schemaOf(rand, depth + 1);
    return z.strictObject(shape);
  }
  switch (int(0, 5)) {
    case 0: return z.enum(['alpha', 'beta', 'gamma']);
    case 1: return z.int().min(0).max(int(1, 1000));
    case 2: return z.number().min(-10).max(10);
    case 3: return z.boolean();
    case 4: return z.array(z.string().max(8)).max(3);
    default: return z.string().max(16);
  }
}

async function vocabularyOf(dir: string): Promise<Vocabulary> {
  const source = fsSource(dir);
  const manifest = await readManifest(source);
  const codec = await loadCodec(source, manifest);
  return { ...codec.vocabulary!, eosTokenIds: manifest.generation.eosTokenIds };
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function measure(name: string, dir: string) {
  const vocab = await vocabularyOf(dir);
  const before = grammarMemoryBytes();
  let t = performance.now();
  await compileGrammar(vocab, { kind: 'json' }).then((ms) => ms.forEach((m) => m.release())); // builds the tokenizer info
  const setupMs = performance.now() - t;
  const afterSetup = grammarMemoryBytes();
  const rand = seededRandom(7);
  const compileMs: number[] = [];
  const stepUs: number[] = [];
  let peak = afterSetup;
  const row = new Float32Array(vocab.size);
  for (let s = 0; s < SCHEMAS; s++) {
    const schema = z.toJSONSchema(schemaOf(rand));
    t = performance.now();
    const [m] = await compileGrammar(vocab, { kind: 'json_schema', schema, strict: true });
    compileMs.push(performance.now() - t);
    for (let step = 0; step < 400 && !m!.done; step++) {
      row.fill(0);
      const t0 = performance.now();
      await m!.mask(row);
      const allowed: number[] = [];
      for (let i = 0; i < row.length; i++) if (row[i] === 0) allowed.push(i);
      const token = allowed[Math.floor(rand() * allowed.length)]!;
      const t1 = performance.now();
      m!.accept(token);
      stepUs.push((t1 - t0 + (performance.now() - t1)) * 1000);
    }
    peak = Math.max(peak, grammarMemoryBytes());
    m!.release();
  }
  // memory per live grammar: HOLD distinct compiled grammars with their matchers alive at once (as concurrent
  // constrained generations hold them); the growth over HOLD, which includes what the first ones took of the slack
  const held = [];
  const beforeHold = grammarMemoryBytes();
  for (let i = 0; i < HOLD; i++) held.push(...(await compileGrammar(vocab, { kind: 'json_schema', schema: z.toJSONSchema(schemaOf(rand)), strict: true })));
  const perHeld = (grammarMemoryBytes() - beforeHold) / HOLD;
  held.forEach((m) => m.release());
  return {
    vocabulary: name,
    vocabSize: vocab.size,
    setupMs: Math.round(setupMs),
    setupMemoryMiB: +((afterSetup - before) / MIB).toFixed(2),
    memoryAfterSetupMiB: +(afterSetup / MIB).toFixed(2),
    grammarMemoryGrowthMiB: +((peak - afterSetup) / MIB).toFixed(2),
    perHeldGrammarMiB: +(perHeld / MIB).toFixed(3),
    perHeldBytesPerVocabEntry: Math.round(perHeld / vocab.size),
    compileMsMedian: +quantile(compileMs, 0.5).toFixed(1),
    compileMsMax: +Math.max(...compileMs).toFixed(1),
    stepUsMedian: +quantile(stepUs, 0.5).toFixed(1),
    stepUsP95: +quantile(stepUs, 0.95).toFixed(1),
    steps: stepUs.length,
  };
}

provideXgrammarWasmFromFile();
if (!(await grammarsAvailable())) throw new Error('xgrammar did not load');
const rows = [await measure('default (models/default)', 'models/default')];
if (existsSync(values.granite)) rows.push(await measure('granite-3.0 (granite-shaped)', values.granite));
else console.warn(`no ${values.granite}: granite's vocabulary skipped (npm run make:granite)`);
const result = { measured: new Date().toISOString(), machine: machineInfo(), schemas: SCHEMAS, hold: HOLD, rows };
await writeFile('bench/results/grammar.json', JSON.stringify(result, null, 2) + '\n');
const md = [
  '# Constrained decoding cost (xgrammar, src/grammar)',
  '',
  `Measured ${result.measured} by \`npx tsx bench/grammar/run.ts --schemas ${SCHEMAS} --hold ${HOLD}\` on ${result.machine.cpu} (${result.machine.cores} cores, load ${result.machine.loadavg.map((l) => l.toFixed(2)).join(' ')}), Node ${result.machine.node}.`,
  `${SCHEMAS} random schemas per vocabulary (objects of enums, bounded numbers, short strings, arrays, nesting), each walked`,
  'with random allowed tokens until complete (no model: the grammar alone). A step = token mask + applying it to a logits row + accepting the token.',
  "xgrammar's WASM memory only grows (freed blocks are reused): the first tokenizer setup instantiates it (16 MiB), the second fits in that.",
  '',
  `Memory per live grammar: ${HOLD} distinct compiled grammars and their matchers held at once (as concurrent constrained`,
  'generations hold them), growth / count; 0 means they all fit in the slack of the memory already there.',
  '',
  '| vocabulary | size | tokenizer setup | memory after setup | per live grammar | per vocab entry | compile median / max | step median / p95 | steps |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.vocabulary} | ${r.vocabSize} | ${r.setupMs} ms, +${r.setupMemoryMiB} MiB | ${r.memoryAfterSetupMiB} MiB | ${r.perHeldGrammarMiB} MiB | ${r.perHeldBytesPerVocabEntry} B | ${r.compileMsMedian} / ${r.compileMsMax} ms | ${r.stepUsMedian} / ${r.stepUsP95} µs | ${r.steps} |`),
  '',
  'Admission (src/runtime/admission.ts, via src/routes/structured.ts) counts GRAMMAR_BYTES_PER_VOCAB_ENTRY x vocabulary size per',
  "constrained generation, above the per-entry figures here; the tokenizer setup is once per isolate and vocabulary, not per generation.",
  '',
];
await writeFile('bench/results/grammar.md', md.join('\n'));
console.log(md.join('\n'));

// KV cache types (KV_CACHE_TYPE) measured: decode tokens/s per type as a ratio to f32 (types interleaved in every
// round, on one kernel instance), and perplexity per type on the default model's held-out excerpts. Writes
// bench/results/kv-cache.{json,md}. Usage (one or more models; the first gets the perplexity when it has excerpts):
//   npx tsx bench/kv-cache/run.ts --model models/default --model <granite-shaped-2l> [--prompt 512] [--decode 32] [--rounds 3]
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { forward, Sequence } from '../../src/engine/forward';
import { kvCacheBytes, KV_CACHE_TYPES, type KvCacheType } from '../../src/engine/kv-cache';
import { loadTextModel, type LocalModel } from '../../src/engine/load';
import { prefill } from '../../src/engine/prefill';
import { argmax } from '../../src/engine/sampler';
import { fsSource } from '../../src/store/source-fs';
import { makeKernels } from '../../tools/kernels-node';
import { perplexity } from '../../tools/perplexity';

const { values } = parseArgs({ options: { model: { type: 'string', multiple: true }, prompt: { type: 'string', default: '512' }, decode: { type: 'string', default: '32' }, rounds: { type: 'string', default: '3' } } });
const models = values.model ?? ['models/default'];
const P = Number(values.prompt);
const D = Number(values.decode);
const ROUNDS = Number(values.rounds);

/** Decode ms of D greedy tokens after a P-token prompt, with a cache of `type`; also the tokens (a sanity check). */
async function decodeMs(m: LocalModel, type: KvCacheType, prompt: number[]): Promise<{ ms: number; tokens: number[] }> {
  const k = m.kernels;
  const seq = new Sequence(k, m.weights, prompt.length + D, { kvType: type });
  try {
    let logits = (await prefill(k, seq, m.expertExecutor, prompt, { logits: 'last' }))[0];
    const tokens: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < D; i++) {
      tokens.push(argmax(logits!));
      logits = (await forward(k, seq, m.expertExecutor, [tokens.at(-1)!], { logits: 'last' }))[0];
    }
    return { ms: performance.now() - t0, tokens };
  } finally {
    seq.release();
  }
}

interface Row { model: string; type: KvCacheType; kvMiB: number; tokPerS: number; ratio: number; perplexity?: number; pplChange?: number }
const rows: Row[] = [];
const kernels = await makeKernels();
for (const dir of models) {
  const m = await loadTextModel(fsSource(dir), kernels);
  const a = m.manifest.architecture;
  const ctx = Math.min(P, a.contextLength - D);
  const prompt = Array.from({ length: ctx }, (_, i) => 3 + ((i * 7919) % (a.vocabSize - 10)));
  const ms = new Map<KvCacheType, number[]>(KV_CACHE_TYPES.map((t) => [t, []]));
  await decodeMs(m, 'f32', prompt.slice(0, 8)); // warm-up
  for (let r = 0; r < ROUNDS; r++) for (const t of KV_CACHE_TYPES) ms.get(t)!.push((await decodeMs(m, t, prompt)).ms);
  const best = (t: KvCacheType) => Math.min(...ms.get(t)!);
  for (const t of KV_CACHE_TYPES) {
    rows.push({ model: `${m.manifest.name} (${dir})`, type: t, kvMiB: kvCacheBytes(a, ctx + D, t) / 2 ** 20, tokPerS: (D * 1000) / best(t), ratio: best('f32') / best(t) });
  }
  const evalFile = join(dir, 'eval.json');
  if (existsSync(evalFile)) {
    const excerpts = (JSON.parse(await readFile(evalFile, 'utf8')) as { excerpts: Record<string, { tokens: number[] }> }).excerpts;
    const tokens = Object.values(excerpts).flatMap((e) => e.tokens);
    let base = NaN;
    for (const t of KV_CACHE_TYPES) {
      const pm = await loadTextModel(fsSource(dir), kernels, { kvCacheType: t });
      const ppl = (await perplexity(pm, tokens)).perplexity;
      if (t === 'f32') base = ppl;
      const row = rows.find((r) => r.model.endsWith(`(${dir})`) && r.type === t)!;
      row.perplexity = ppl;
      row.pplChange = ppl / base - 1;
    }
  }
}

const md = [
  `# KV cache types: decode speed and perplexity`,
  '',
  `\`npx tsx bench/kv-cache/run.ts ${process.argv.slice(2).join(' ')}\` on ${cpus()[0]?.model ?? 'cpu'} (Node ${process.versions.node}, WASM relaxed/SIMD, 1 thread).`,
  `Decode: ${D} greedy tokens after a ${P}-token prompt (capped at the context), best of ${ROUNDS} rounds, types interleaved in every round.`,
  'Perplexity: the held-out excerpts of models/default/eval.json (verse, code, sums), as `npm run cli -- perplexity --kv-cache-type t`.',
  '',
  '| model | KV type | KV cache at the run\'s positions, MiB | decode tok/s | vs f32 | perplexity | change vs f32 |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.model} | ${r.type} | ${r.kvMiB.toFixed(2)} | ${r.tokPerS.toFixed(1)} | ${r.ratio.toFixed(3)} | ${r.perplexity?.toFixed(4) ?? ''} | ${r.pplChange === undefined ? '' : `${(r.pplChange * 100).toFixed(3)}%`} |`),
].join('\n') + '\n';
await writeFile('bench/results/kv-cache.json', JSON.stringify({ date: new Date().toISOString(), node: process.versions.node, cpu: cpus()[0]?.model, prompt: P, decode: D, rounds: ROUNDS, rows }, null, 2) + '\n');
await writeFile('bench/results/kv-cache.md', md);
process.stdout.write(md);

// `npm run bench:shapes`: moe-edge against llama.cpp and wllama at real MoE shapes (granite-3.0-1b-a400m-shaped
// q4_0 and q8_0, plus the default model): prefill and decode tok/s per prompt length and KV cache type, engines
// interleaved round by round, decode as a fraction of its memory bound (bound.ts) against a streaming read sampled
// before every round. Writes bench/results/shapes.{json,md} and a line of bench/results/history.md. Options: args.ts.
import { execFileSync } from 'node:child_process';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadTextModel } from '../../src/engine/load';
import { fsSource } from '../../src/store/source-fs';
import { kernelsLabel } from '../../src/kernels/fused-dot';
import { makeKernels } from '../../tools/kernels-node';
import { machineInfo } from '../matvec/machine';
import { llamaInstalled } from '../peers/llama';
import { promptOf } from '../prompt-of';
import { DEFAULT_MODEL, parseShapesArgs } from './args';
import { openEngines, WLLAMA, type ShapesEngine } from './engines';
import { prepareModel } from './models';
import { HISTORY_HEADER, historyLine, renderMarkdown, summarize, type RoundSample, type ShapesDoc } from './report';
import { streamYardstick } from './yardstick';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RESULTS = new URL('../results/', import.meta.url);
const argv = process.argv.slice(2);
const opts = parseShapesArgs(argv);
if (!llamaInstalled()) throw new Error('node-llama-cpp is not installed: run `npm run setup:peers`');
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const git = (...a: string[]) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
const started = { uptime: uptime(), date: new Date().toISOString() };
const commit = `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '+dirty' : ''}`;
const log = (s: string) => console.log(`[${((performance.now()) / 1000).toFixed(0)}s] ${s}`);
log(`bench:shapes at ${commit}; ${started.uptime}`);

// every model checked and exported before any is measured: a missing one fails in seconds, not after an hour
const models = [];
for (const dir of [...opts.models, ...(opts.defaultModel ? [DEFAULT_MODEL] : [])]) models.push(await prepareModel(dir, ROOT, log));
const yardstick = await streamYardstick();
const samples: RoundSample[] = [];
const notes: string[] = [];
const kernelsUsed: Record<string, string> = {};

for (const m of models) {
  const a = m.manifest.architecture;
  const kernels = await makeKernels(); // a fresh heap per model: the last one's weights go with it
  kernelsUsed['moe-edge (Node)'] = kernelsLabel(kernels);
  const ours = await loadTextModel(fsSource(m.dir), kernels);
  const prompts = new Map<number, number[]>();
  for (const P of opts.prompts) {
    if (P + opts.decode > a.contextLength) {
      notes.push(`${m.name}: the ${P}-token cases are not run: ${P} + ${opts.decode} positions exceed its context of ${a.contextLength}`);
      continue;
    }
    const p = ours.encode(promptOf(ours.encode, P).text);
    if (p.length !== P) notes.push(`${m.name}: the tokenizer gave a ${p.length}-token prompt for ${P}`);
    prompts.set(P, p);
  }
  if (prompts.size === 0) continue;
  const maxPrompt = Math.max(...[...prompts.values()].map((p) => p.length));
  const set = await openEngines(m, ours, { maxPrompt, decode: opts.decode, wllama: opts.wllama, wllamaMaxPrompt: opts.wllamaMaxPrompt }, log);
  notes.push(...set.notes.map((n) => `${m.name}: ${n}`));
  const longer = [...prompts.keys()].filter((P) => P > opts.wllamaMaxPrompt);
  if (opts.wllama && set.engines.some((e) => e.name === WLLAMA) && longer.length) {
    notes.push(`${m.name}: wllama not run on the ${longer.join(', ')}-token prompts (--wllama-max-prompt ${opts.wllamaMaxPrompt}: a 1,024-token granite round takes it ~7 min)`);
  }
  kernelsUsed['moe-edge (workerd)'] = set.workerdKernels;
  try {
    for (const kv of opts.kv) {
      const ready: ShapesEngine[] = [];
      for (const e of set.engines) {
        try {
          log(`${m.name} kv ${kv}: ${e.name} prepares and warms up`);
          await e.setKv(kv);
          await e.round(prompts.values().next().value!, 8); // warm-up: JIT tiers, first touch of the cache
          ready.push(e);
        } catch (err) {
          notes.push(`${m.name}, KV ${kv}: ${e.name} did not run: ${(err as Error).message.split('\n')[0]}`);
          log(notes.at(-1)!);
        }
      }
      for (let r = 0; r < opts.rounds; r++) {
        for (const [P, prompt] of prompts) {
          for (const e of ready) {
            if (e.name === WLLAMA && prompt.length > opts.wllamaMaxPrompt) continue;
            // the round bracketed by slices of the streaming read; the bound takes the fastest: other work on a
            // shared machine (or a GC pause) only slows a slice, so the fastest is closest to what memory delivers
            const before = yardstick.slices(opts.streamMs / 2, 3);
            try {
              const res = await e.round(prompt, opts.decode);
              const streamGbps = Math.max(...before, ...yardstick.slices(opts.streamMs / 2, 3));
              samples.push({ model: m.name, kv, engine: e.name, layout: e.layout, attention: e.attention, prompt: prompt.length, decode: opts.decode, round: r, prefillMs: res.prefillMs, decodeMs: res.decodeMs, tokens: res.tokens, streamGbps });
              log(`${m.name} kv ${kv} round ${r + 1}/${opts.rounds} P ${P} ${e.name}: prefill ${((P / res.prefillMs) * 1000).toFixed(1)} tok/s, decode ${((opts.decode / res.decodeMs) * 1000).toFixed(1)} tok/s, stream ${streamGbps.toFixed(1)} GB/s`);
            } catch (err) {
              // wllama may refuse a long prompt; the other engines' numbers of the run are kept
              notes.push(`${m.name}, KV ${kv}, ${P}-token prompt, round ${r + 1}: ${e.name} failed: ${(err as Error).message.split("\n")[0]}${(err as { cause?: unknown }).cause ? ` (${String((err as { cause?: unknown }).cause)})` : ""}`);
              log(notes.at(-1)!);
            }
          }
        }
      }
    }
  } finally {
    for (const e of set.engines) await e.dispose();
  }
}
yardstick.release();

const ended = { uptime: uptime(), date: new Date().toISOString() };
const peerVersion = JSON.parse(await readFile(`${ROOT}bench/peers/node_modules/node-llama-cpp/package.json`, 'utf8')).version as string;
const doc: ShapesDoc = {
  benchmark: 'shapes',
  date: started.date,
  ended: ended.date,
  commit,
  command: ['npm run bench:shapes', ...(argv.length ? ['--', ...argv.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a))] : [])].join(' '),
  note: opts.note,
  machine: { ...machineInfo(), node_llama_cpp: peerVersion },
  uptime: { start: started.uptime, end: ended.uptime },
  options: opts,
  kernels: kernelsUsed,
  models: models.map((m) => ({ name: m.name, dir: m.dir.startsWith(ROOT) ? m.dir.slice(ROOT.length) : m.dir, manifest_sha256: m.digest, gguf: m.gguf.startsWith(ROOT) ? m.gguf.slice(ROOT.length) : m.gguf, quant: m.manifest.quant, architecture: m.manifest.architecture })),
  cases: summarize(samples, new Map(models.map((m) => [m.name, m.manifest]))),
  notes,
};
const md = renderMarkdown(doc);
console.log(`\n${md}`);
if (opts.record) {
  await writeFile(new URL('shapes.json', RESULTS), `${JSON.stringify(doc, null, 2)}\n`);
  await writeFile(new URL('shapes.md', RESULTS), md);
  const history = new URL('history.md', RESULTS);
  if (!existsSync(history)) await writeFile(history, HISTORY_HEADER);
  await appendFile(history, `${historyLine(doc)}\n`);
  console.log('wrote bench/results/shapes.{json,md} and a line of bench/results/history.md');
} else console.log('(--no-record: not recorded)');

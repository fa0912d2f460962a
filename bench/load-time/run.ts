// Loading a model, ours against llama.cpp on the very same weights (issue 14's "within 2x of llama.cpp"): each
// load in a fresh process (bench/load-time/once.ts), the two engines interleaved round by round, plus what the
// SHA-256 checks of our load cost alone. Writes bench/results/load-time.{json,md}. Usage:
//   npm run bench:load-time -- [--model .cache/models/granite-shaped-q4_0] [--gguf <file>] [--rounds 3] [--note <what changed>]
import { execFileSync, execSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { machineInfo } from '../matvec/machine';
import { llamaInstalled } from '../peers/llama';
import { prepareModel } from '../shapes/models';
import type { LoadSample } from './once';

const { values } = parseArgs({ options: { model: { type: 'string', default: '.cache/models/granite-shaped-q4_0' }, gguf: { type: 'string' }, rounds: { type: 'string', default: '3' }, note: { type: 'string' } } });
const modelDir = values.model!;
const rounds = Number(values.rounds);
if (!llamaInstalled()) throw new Error('node-llama-cpp is not installed in bench/peers: npm run setup:peers');
// bench:shapes' GGUF cache, keyed by the manifest's digest: a rebuilt model is exported again (pass --gguf to name another)
const gguf = values.gguf ?? (await prepareModel(modelDir, process.cwd(), (line) => process.stdout.write(`${line}\n`))).gguf;

function once(engine: LoadSample['engine'], path: string): LoadSample {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/load-time/once.ts', engine, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const sample = JSON.parse(out.trim().split('\n').at(-1)!) as LoadSample;
  process.stdout.write(`  ${engine}: ${sample.ms.toFixed(0)} ms, ${sample.minorFaults} page faults\n`);
  return sample;
}

const uptimeBefore = execSync('uptime').toString().trim();
const samples: { round: number; ours: LoadSample; llama: LoadSample; digests: LoadSample }[] = [];
for (let round = 0; round < rounds; round++) {
  process.stdout.write(`round ${round + 1}/${rounds}\n`);
  // the engine that goes first alternates: neither always meets the page cache the other left
  const first = round % 2 === 0 ? 'ours' : 'llama';
  const a = once(first, first === 'ours' ? modelDir : gguf);
  const b = once(first === 'ours' ? 'llama' : 'ours', first === 'ours' ? gguf : modelDir);
  const [ours, llama] = first === 'ours' ? [a, b] : [b, a];
  samples.push({ round, ours, llama, digests: once('digests', modelDir) });
}
const uptimeAfter = execSync('uptime').toString().trim();

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const ms = (pick: (s: (typeof samples)[number]) => LoadSample) => median(samples.map((s) => pick(s).ms));
const summary = {
  oursMs: ms((s) => s.ours),
  llamaMs: ms((s) => s.llama),
  digestsMs: ms((s) => s.digests),
  ratio: median(samples.map((s) => s.ours.ms / s.llama.ms)), // per round: the pairs ran back to back
  digestShare: ms((s) => s.digests) / ms((s) => s.ours),
  hashedBytes: samples[0].digests.bytes ?? 0,
  heapBytes: samples[0].ours.bytes ?? 0,
};
const command = `npm run bench:load-time -- ${process.argv.slice(2).join(' ')}`.trim();
const commit = execSync('git rev-parse --short HEAD').toString().trim();
const machine = machineInfo();
const mb = (b: number) => (b / 1e6).toFixed(0);
const md = [
  '# Loading a model: moe-edge vs llama.cpp, same weights',
  '',
  `${new Date().toISOString()}, commit ${commit}; \`${command}\``,
  `${machine.cpu} (${machine.cores} cores), Node ${machine.node}. \`uptime\` before: ${uptimeBefore}; after: ${uptimeAfter}`,
  '',
  `Ours: \`loadTextModel(fsSource('${modelDir}'), await makeKernels())\`, every object's SHA-256 checked before it returns (${mb(summary.heapBytes)} MB of heap).`,
  `llama.cpp: node-llama-cpp \`openLlama('${gguf}', { contextSize: 512 })\` (mmap, 1 thread; model and context), the GGUF \`npm run cli -- export-gguf\` wrote of the same folder.`,
  'Each load in a fresh process, the two interleaved (the first of a round alternates); times exclude process start-up and module/binding set-up.',
  `Digests: the same SHA-256 checks alone over ${mb(summary.hashedBytes)} MB already in memory (trunk streamed through node:crypto, the rest through WebCrypto).`,
  '',
  '| round | ours, ms | llama.cpp, ms | ours / llama.cpp | digests alone, ms | page faults ours / llama.cpp |',
  '|---|---|---|---|---|---|',
  ...samples.map((s) => `| ${s.round + 1} | ${s.ours.ms.toFixed(0)} | ${s.llama.ms.toFixed(0)} | ${(s.ours.ms / s.llama.ms).toFixed(2)} | ${s.digests.ms.toFixed(0)} | ${s.ours.minorFaults} / ${s.llama.minorFaults} |`),
  `| median | ${summary.oursMs.toFixed(0)} | ${summary.llamaMs.toFixed(0)} | **${summary.ratio.toFixed(2)}** (of the rounds' ratios) | ${summary.digestsMs.toFixed(0)} (${(summary.digestShare * 100).toFixed(0)}% of ours) | |`,
  '',
  'Both engines first-touch every page of their weights (the page-fault counts), and on this VM a first touch is dear: a bare',
  'loop touching 800 MB of fresh memory took 4.7-7 s (~25-35 us per 4 KiB page), so those faults are most of either load.',
  ...(values.note ? ['', values.note] : []),
].join('\n') + '\n';
mkdirSync('bench/results', { recursive: true });
await writeFile('bench/results/load-time.json', JSON.stringify({ date: new Date().toISOString(), commit, command, uptimeBefore, uptimeAfter, loadavg: loadavg(), machine, model: modelDir, gguf, rounds, samples, summary, note: values.note ?? null }, null, 2) + '\n');
await writeFile('bench/results/load-time.md', md);
process.stdout.write(md);

// `npm run bench`: the kernel benchmark (expert FFN vs the streaming read, onnxruntime-web and llama.cpp) and the
// end-to-end benchmark (moe-edge in Node and workerd vs llama.cpp), recorded as bench/results/latest.{json,md,svg,png}.
// Options: --rounds N (7) --min-ms MS (300) --pool-mb MB (64) --only kernels|e2e (printed, not recorded),
// --no-wllama (skip the Chromium peer).
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runE2e } from './e2e/run';
import { GRANITE } from './matvec/cases';
import { defaultModelDims } from './matvec/default-model';
import { machineInfo } from './matvec/machine';
import { runKernels } from './kernels/run';
import { ortVersion } from './kernels/ort';
import { llamaInstalled } from './peers/llama';
import { renderMarkdown, renderSvg, type LatestDoc } from './report-all';

const RESULTS = new URL('./results/', import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const { values } = parseArgs({ args: process.argv.slice(2), options: { rounds: { type: 'string' }, 'min-ms': { type: 'string' }, 'pool-mb': { type: 'string' }, only: { type: 'string' }, 'no-wllama': { type: 'boolean', default: false } } });
const only = values.only ?? null;
if (only !== null && only !== 'kernels' && only !== 'e2e') throw new Error('--only is kernels or e2e');
if (!llamaInstalled()) throw new Error('node-llama-cpp is not installed: run `npm run setup:peers`');
const rounds = Number(values.rounds ?? 7);
const opts = { rounds, minMs: Number(values['min-ms'] ?? 300), slices: 6, poolBytes: Number(values['pool-mb'] ?? 64) * 2 ** 20, streamBytes: 256 << 20, workDir: `${ROOT}.tmp/bench-run`, wllama: !values['no-wllama'] };

const peerVersion = JSON.parse(await readFile(`${ROOT}bench/peers/node_modules/node-llama-cpp/package.json`, 'utf8')).version as string;
const machine = { ...machineInfo(), onnxruntime_web: ortVersion(), node_llama_cpp: peerVersion };
console.log(`${machine.cpu}, node ${machine.node}, load ${machine.loadavg.join(' ')}`);
const dims = await defaultModelDims();
const shapes = [{ model: 'default', hidden: dims.hidden, inter: dims.intermediate }, { model: GRANITE.model, hidden: GRANITE.hidden, inter: GRANITE.intermediate }];

const k = only === 'e2e' ? { kernels: [], peers: [] } : await runKernels(shapes, opts, console.log);
const e = only === 'kernels' ? null : await runE2e(`${ROOT}models/default`, { rounds, promptTokens: 128, decodeTokens: 128, workDir: opts.workDir, wllama: opts.wllama }, console.log);

const doc: LatestDoc = {
  benchmark: 'all',
  date: new Date().toISOString(),
  command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
  machine,
  options: { ...opts, workDir: undefined },
  models: { default: dims.source, granite: `granite-3.0-1b-a400m expert shape (H ${GRANITE.hidden}, I ${GRANITE.intermediate}), random weights`, e2e: e?.model ?? '—' },
  kernels: k.kernels,
  peers: k.peers,
  e2e: e?.records ?? [],
  notes: [
    'llama.cpp kernel numbers come by difference of two synthetic GGUFs (one vs four experts per token for native llama.cpp, one vs two for wllama; every token running every expert) through node-llama-cpp, which has no op-level API: they include its mul_mat_id and graph overhead per expert.',
    'llama.cpp\'s WASM build is wllama; it needs a Web Worker (and JSPI and memory64), which Node lacks, so it runs single-threaded in headless Chromium (Debian\'s chromium via playwright-core), timed by llama.cpp\'s own counters.',
    ...(e?.notes ?? []),
    'onnxruntime-web runs its wasm backend single-threaded on our FFN as an ONNX graph (MatMul/MatMulNBits/DynamicQuantizeMatMul, Sigmoid, Mul) with one session per weight copy rotated out of cache.',
    ...(e ? [`moe-edge kernels: Node ${e.kernels['moe-edge (Node)']}, workerd ${e.kernels['moe-edge (workerd)']}.`] : []),
  ],
};
const md = renderMarkdown(doc);
if (only) {
  console.log(`\n${md}\n(--only ${only}: not recorded)`);
} else {
  await mkdir(RESULTS, { recursive: true });
  await writeFile(new URL('latest.json', RESULTS), `${JSON.stringify(doc, null, 2)}\n`);
  await writeFile(new URL('latest.md', RESULTS), md);
  const svg = fileURLToPath(new URL('latest.svg', RESULTS));
  await writeFile(svg, renderSvg(doc));
  try {
    execFileSync('rsvg-convert', ['-o', fileURLToPath(new URL('latest.png', RESULTS)), svg]);
  } catch {
    console.warn('rsvg-convert not found: wrote latest.svg only (apt-get install -y librsvg2-bin for the PNG)');
  }
  console.log(`\n${md}\nwrote bench/results/latest.{json,md,svg,png}`);
}

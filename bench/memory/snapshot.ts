// What the front Worker's JS heap holds, from heap snapshots taken in local workerd (issue 13): after the model
// load and during a generation, each summarized by constructor and first retainer (heap-summary.ts). Heap usage is
// sampled just before each snapshot and just after it (the snapshot collects garbage first): the difference is
// garbage V8 had not collected yet. Writes bench/results/heap-snapshot.md unless --no-record.
//   npx tsx bench/memory/snapshot.ts --model <folder> [--var KV_CACHE_TYPE=q4_0 ...] [--prompt-words 700] [--after-tokens 300]
import { writeFile } from 'node:fs/promises';
import { execSync } from 'node:child_process';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { IsolateMemory, probeOf, type IsolateSample } from '../../tools/dev/isolate-memory';
import { startLocalWorker } from '../../tools/dev/local-worker';
import { seedLocalR2 } from '../../tools/seed-local-r2';
import { renderSummary, summarizeSnapshot } from './heap-summary';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/default' },
    var: { type: 'string', multiple: true, default: [] },
    'prompt-words': { type: 'string', default: '700' },
    'after-tokens': { type: 'string', default: '300' },
    'keep-snapshots': { type: 'string' },
    'no-record': { type: 'boolean', default: false },
  },
});
const log = (l: string) => process.stderr.write(`heap-snapshot: ${l}\n`);
const dir = resolve(o.model);
const modelId = basename(dir);
const vars: Record<string, string> = {
  MODEL_ID: modelId,
  HOT_EXPERTS: 'none',
  ISOLATE_MEMORY_MB: '120',
  ...Object.fromEntries(o.var.map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)])),
};
const MiB = (b: number) => (b / 2 ** 20).toFixed(1);
const usage = (s: IsolateSample) => `JS used ${MiB(s.jsUsedBytes)} MiB (backing stores ${MiB(s.jsBackingStoreBytes)}), WASM ${MiB(s.wasmMemoryBytes)} MiB`;

/** Markdown lines: what the sampling heap profiler saw allocated, by function (worker.js lines: the bundle's). */
function allocationTable(title: string, byFunction: { fn: string; bytes: number }[]): string[] {
  const total = byFunction.reduce((a, f) => a + f.bytes, 0);
  return [
    `### ${title} (sampling heap profiler, garbage included)`,
    '',
    `${MiB(total)} MiB in all; by allocating function:`,
    '',
    '| function | MiB |',
    '|---|---|',
    ...byFunction.slice(0, 12).map((f) => `| \`${f.fn}\` | ${MiB(f.bytes)} |`),
    '',
  ];
}

const persistTo = resolve(`.wrangler/bench-memory/${modelId}`);
await seedLocalR2({ model: dir, persistTo, modelId, log });
const worker = await startLocalWorker({ inspector: true, inspectorPort: 0, persistTo, vars });
const report: string[] = [];
try {
  await worker.fetch(`${worker.url}/metrics`);
  const mem = await IsolateMemory.connect(await probeOf(worker, modelId), { direct: true });
  const before = await mem.sample();
  report.push(`- before the load: ${usage(before)}`);

  /** usage, a snapshot (garbage collected first), usage again: live vs. not yet collected. */
  const snap = async (label: string) => {
    const pre = await mem.sample();
    const t0 = performance.now();
    const text = await mem.heapSnapshot();
    const post = await mem.sample();
    log(`${label}: snapshot of ${MiB(text.length)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (o['keep-snapshots']) await writeFile(`${o['keep-snapshots']}/${label.replace(/\W+/g, '-')}.heapsnapshot`, text);
    report.push(`- ${label}, before the snapshot: ${usage(pre)}`, `- ${label}, after it (garbage collected): ${usage(post)}; garbage ${MiB(pre.jsUsedBytes - post.jsUsedBytes)} MiB`, '');
    report.push(renderSummary(label, summarizeSnapshot(text)));
  };

  const load = await mem.allocationsDuring(async () => {
    const r = await worker.fetch(`${worker.url}/healthz`);
    if (r.status !== 200) throw new Error(`the model did not load: ${r.status} ${await r.text()}`);
  });
  report.push(...allocationTable('Allocated during the model load', load.byFunction));
  await snap('after the model load');

  // one streamed generation; the snapshot is taken once `after-tokens` tokens have arrived, then the stream is cancelled
  const words = 'the edge holds a small model and the experts answer in turn while the cache grows'.split(' ');
  const prompt = Array.from({ length: Number(o['prompt-words']) }, (_, i) => words[i % words.length]).join(' ');
  const res = await fetch(`${worker.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: modelId, prompt, max_tokens: 1025, temperature: 0.8, seed: 7, stream: true }),
  });
  if (res.status !== 200 || !res.body) throw new Error(`generation: ${res.status} ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let events = 0;
  const { byFunction } = await mem.allocationsDuring(async () => {
    while (events < Number(o['after-tokens'])) {
      const { done, value } = await reader.read();
      if (done) break;
      events += decoder.decode(value, { stream: true }).split('data: ').length - 1;
    }
  });
  report.push(...allocationTable(`Allocated while the first ${events} tokens streamed`, byFunction));
  await snap(`during a generation (${events} tokens streamed)`);
  await reader.cancel();
  mem.close();

  const header = [
    '# What the front isolate\'s JS heap holds (heap snapshots in local workerd)',
    '',
    `\`npx tsx bench/memory/snapshot.ts --model ${o.model}${o.var.map((v) => ` --var ${v}`).join('')}\` (bench/memory/snapshot.ts)`,
    '',
    `${new Date().toISOString()}, commit ${execSync('git rev-parse --short HEAD').toString().trim()}; \`uptime\`: ${execSync('uptime').toString().trim()}`,
    '',
    'Self sizes of live objects by group (`type:constructor`), with the groups of their first strong retainers.',
    'Usage is sampled (Runtime.getHeapUsage) just before each snapshot and after it; V8 collects garbage before',
    'a snapshot, so the difference is garbage not yet collected. Stopping the sampling heap profiler seems to collect',
    'garbage too (after it the difference was ~0.1 MiB, against 21-29 MiB without it): the garbage figures of a run',
    'with the profiler are low; the allocation tables say where garbage comes from.',
    '',
  ];
  const md = [...header, ...report].join('\n');
  if (!o['no-record']) await writeFile('bench/results/heap-snapshot.md', md);
  process.stdout.write(md);
} finally {
  await worker.dispose();
}

// The memory benchmark's record: bench/results/memory.json keeps the latest run per command (one per model and
// set of vars), memory.md renders them: measured peaks and steady states beside the planner's prediction.
import { readFile, writeFile } from 'node:fs/promises';
import type { IsolateSample } from '../../tools/dev/isolate-memory';
import type { Phase, Prediction } from './phases';

const JSON_PATH = 'bench/results/memory.json';
const MD_PATH = 'bench/results/memory.md';

export interface MemoryRun {
  command: string;
  date: string;
  commit: string;
  uptime: string;
  loadavg: number[];
  model: { folder: string; name: string; quant: unknown; contextLength: number };
  vars: Record<string, string>;
  /** what changed since the previous run of the same command (--note) */
  note?: string;
  everyMs: number;
  requestedPositions: { single: number; concurrent: number };
  /** generations admission refused (400 memory_budget_exceeded, 503 isolate_memory_busy), with the message a client gets */
  refusals: { positions: number; status: number; code: string | null; message: string }[];
  before: IsolateSample;
  phases: Phase[];
  planner: Prediction[];
}

export async function recordRun(run: MemoryRun): Promise<void> {
  let runs: MemoryRun[] = [];
  try {
    runs = JSON.parse(await readFile(JSON_PATH, 'utf8')) as MemoryRun[];
  } catch {
    // first run
  }
  runs = [...runs.filter((r) => r.command !== run.command), run];
  await writeFile(JSON_PATH, JSON.stringify(runs, null, 2) + '\n');
  await writeFile(MD_PATH, renderMarkdown(runs));
}

export function renderMarkdown(runs: readonly MemoryRun[]): string {
  const out = [
    '# Isolate memory in local workerd (front Worker)',
    '',
    'Measured per isolate by `npm run bench:memory` (bench/memory/run.ts): the JS heap from the V8 inspector',
    '(`Runtime.getHeapUsage`: used + ArrayBuffer backing stores), the WASM memory the Worker reports in /metrics',
    '(`moe_wasm_memory_bytes`, and `moe_wasm_heap_used_bytes` of it handed out by the allocator), and the workerd',
    "process's RSS delta from before the model load as a cross-check. isolate = JS used + backing stores + WASM memory.",
    'Peak: the largest value while the phase ran (~50 ms samples; the isolate answers between its tasks); after:',
    'one sample once it ended. Planner: tools/placement.ts for the same lengths (heap: trunk + KV caches + scratch;',
    'isolate: + runtime and tokenizer estimates; load: the trunk in the heap and one streamed chunk; KV caches at the Worker KV_CACHE_TYPE). MiB throughout.',
    '',
  ];
  for (const r of runs) {
    out.push(`## ${r.model.name} (${r.model.folder})`, '', `\`${r.command}\``, '');
    out.push(`${r.date}, commit ${r.commit}; \`uptime\`: ${r.uptime}`, '');
    if (r.note) out.push(r.note, '');
    out.push(`Vars: ${Object.entries(r.vars).map(([k, v]) => `${k}=${v}`).join(', ')}. Context ${r.model.contextLength}.`, '');
    for (const x of r.refusals) out.push(`- refused: ${x.positions} positions -> ${x.status} ${x.code}: "${x.message}"`);
    if (r.refusals.length) out.push('');
    out.push(
      '| phase | samples | JS used peak / after | backing peak / after | WASM memory peak / after | WASM heap used peak / after | isolate peak / after | RSS delta peak / after | planner heap | planner isolate |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    r.phases.forEach((p, i) => {
      const pl = r.planner[i];
      const gens = p.generations.map((g) => (g.status === 200 ? `${g.promptTokens}+${g.completionTokens} in ${(g.ms / 1000).toFixed(1)} s` : `${g.status}`)).join(', ');
      const pair = (k: keyof Phase['peak']) => `${p.peak[k]} / ${p.after[k]}`;
      out.push(`| ${p.label}${gens ? ` (${gens})` : ''} | ${p.samples} | ${pair('jsUsed')} | ${pair('jsBacking')} | ${pair('wasmMemory')} | ${pair('wasmHeapUsed')} | ${pair('isolate')} | ${pair('rssDelta')} | ${pl.heap} | ${pl.isolate} |`);
    });
    out.push('');
  }
  return out.join('\n');
}

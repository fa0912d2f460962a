// The tiers benchmark's record: bench/results/tiers.json holds the latest run, tiers.md renders it: decode tokens/s
// per edge share (and its ratio to 0% in the same run), time to first token, cold starts, one shard's memory.
import { readFile, writeFile } from 'node:fs/promises';
import { isolateBytes, type IsolateSample } from '../../tools/dev/isolate-memory';
import type { Timed } from './client';
import type { ShardMemory } from './shard-probe';

const JSON_PATH = 'bench/results/tiers.json';
const MD_PATH = 'bench/results/tiers.md';
const MiB = 2 ** 20;
/** issue 13: every isolate within 128 MB; a shard must stay under this */
export const SHARD_LIMIT_BYTES = 120 * MiB;

export interface ConfigRun {
  label: string;
  fraction: number;
  /** experts asked for at the edge, and placed there (front + shards) */
  target: number;
  edge: number;
  front: number;
  shards: { experts: number; bytes: number }[];
  backend: number;
  /**
   * fresh `wrangler dev` each: its start; the front's model load (GET /healthz); first request -> first token, the
   * load included (the /healthz time plus the first completion's time to first token)
   */
  cold: { startMs: number; loadMs: number; firstTokenMs: number }[];
  decode: Timed[];
  ttft: Partial<Record<'p128' | 'p1024', Timed>>;
}

export interface TiersRun {
  command: string;
  date: string;
  commit: string;
  uptime: { before: string; after: string };
  loadavg: number[];
  model: { folder: string; name: string; quant: unknown; layers: number; experts: number; topK: number };
  settings: Record<string, unknown>;
  configs: ConfigRun[];
  /** the run the configs were measured in (they may come from an earlier run than the shard's) */
  configsFrom?: Stamp;
  shard: {
    from?: Stamp;
    experts: number;
    budgetBytes: number;
    roomBytes: number;
    shardJsEstimate: number;
    cold: { startMs: number; healthzMs: number }[];
    memory: ShardMemory | null;
  } | null;
}

export interface Stamp {
  command: string;
  date: string;
  commit: string;
  uptime: { before: string; after: string };
}

const stampOf = (r: TiersRun): Stamp => ({ command: r.command, date: r.date, commit: r.commit, uptime: r.uptime });
const stampLine = (s: Stamp | undefined) => (s ? `Measured by \`${s.command}\` at ${s.date} (commit ${s.commit}); load before \`${s.uptime.before}\`, after \`${s.uptime.after}\`.` : '');

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const mib = (b: number) => (b / MiB).toFixed(1);
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const decodeOf = (c: ConfigRun) => median(c.decode.map((d) => d.decodeTokPerS ?? NaN));

export function renderTiers(r: TiersRun): string {
  const out: string[] = [
    '# Edge tiers in workerd (granite-shaped q4_0)',
    '',
    `\`${r.command}\` — ${r.date}, commit ${r.commit}, model ${r.model.name} (${r.model.layers} layers x ${r.model.experts} experts, top-${r.model.topK}).`,
    `Load: before \`${r.uptime.before}\`; after \`${r.uptime.after}\` (2 shared cores: compare ratios within this run, not bare times).`,
    `Settings: ${JSON.stringify(r.settings)}.`,
    '',
  ];
  if (r.configs.length) {
    const base = r.configs.find((c) => c.fraction === 0);
    out.push('## Decode and where the picks ran', '', stampLine(r.configsFrom), '',
      'Front HOT_EXPERTS none; shards planned by bench/tiers/split.ts (tier planner, even shards within the room); the rest on the backend.',
      'Decode tok/s: (completion tokens - 1) / (last token chunk - first token chunk), streamed, greedy, median of the reps.', '',
      '| edge | experts front / shards / backend | shards (experts each) | decode tok/s | vs 0% | usage.moe (last rep) |',
      '|---|---|---|---|---|---|');
    for (const c of r.configs) {
      const d = decodeOf(c);
      const moe = c.decode.at(-1)?.moe;
      const moeText = moe ? `hot ${moe.hot_hits}, shard ${moe.shard_hits}, cold ${moe.cold_calls}, remote ${moe.remote_ms} ms` : '-';
      out.push(`| ${c.label} (${c.edge} of ${c.edge + c.backend}) | ${c.front} / ${c.edge - c.front} / ${c.backend} | ${c.shards.length} (${c.shards.map((s) => s.experts).join('/') || '-'}) | ${Number.isFinite(d) ? d.toFixed(2) : '-'} | ${base && Number.isFinite(d) ? (d / decodeOf(base)).toFixed(2) + 'x' : '-'} | ${moeText} |`);
    }
    out.push('', '## Time to first token', '', '| edge | prompt tokens | TTFT ms | vs 0% |', '|---|---|---|---|');
    for (const c of r.configs) {
      for (const [k, t] of Object.entries(c.ttft)) {
        const b = base?.ttft[k as 'p128' | 'p1024'];
        out.push(`| ${c.label} | ${t!.promptTokens} | ${ms(t!.ttftMs)} | ${b ? (t!.ttftMs / b.ttftMs).toFixed(2) + 'x' : '-'} |`);
      }
    }
    out.push('', '## Cold start: fresh workerd, first request -> first token', '',
      'Front load = GET /healthz on a fresh isolate (trunk read from local R2, digests checked, unpacked); then one completion of an 8-token prompt, whose first token needs every tier: at 0% the backend (already up), at 100% the shards, which load their slices on their first call. Goal for the front: <= 1.5 s.', '',
      '| edge | samples | front load ms (median; each) | first token ms, load included (median; each) | wrangler dev start ms (median) |', '|---|---|---|---|---|');
    for (const c of r.configs) {
      const each = (f: (x: ConfigRun['cold'][number]) => number) => `${ms(median(c.cold.map(f)))} (${c.cold.map((x) => ms(f(x))).join(', ')})`;
      out.push(`| ${c.label} | ${c.cold.length} | ${each((x) => x.loadMs)} | ${each((x) => x.firstTokenMs)} | ${ms(median(c.cold.map((x) => x.startMs)))} |`);
    }
  }
  const s = r.shard;
  if (s) {
    out.push('', `## One expert shard (${s.experts} experts, planned room ${mib(s.roomBytes)} of ${mib(s.budgetBytes)} MiB)`, '', stampLine(s.from), '');
    if (s.cold.length) out.push(`Cold start, fresh workerd -> /healthz ok (slice loaded): median ${ms(median(s.cold.map((c) => c.healthzMs)))} ms (${s.cold.map((c) => ms(c.healthzMs)).join(', ')}).`, '');
    const m = s.memory;
    if (m) {
      const row = (what: string, p: ShardMemory['load']['peak']) => `| ${what} | ${mib(p.jsUsedBytes)} | ${mib(p.jsTotalBytes)} | ${mib(p.jsBackingStoreBytes)} | ${mib(p.wasmMemoryBytes)} | ${mib(p.isolateBytes)} | ${mib(p.rssBytes - m.rssBeforeLoad)} |`;
      out.push(`Slice: ${m.healthz.experts} experts, ${mib(m.healthz.bytes)} MiB, loaded in ${ms(m.healthz.ms)} ms (inspector on). Calls over /v1/experts/ws: ${m.calls.prefill} of 64 tokens x top-${r.model.topK} (${m.calls.prefillMs.toFixed(1)} ms each), ${m.calls.decode} of 1 token x top-${r.model.topK} (${m.calls.decodeMsEach.toFixed(2)} ms each).`,
        'Peaks of the samples (every ~50 ms): JS heap from the inspector (Runtime.getHeapUsage), WASM from /metrics, isolate = JS used + backing stores + WASM; RSS as the workerd process\'s growth since before the load.', '',
        '| phase | JS used MiB | JS allocated MiB | backing stores MiB | WASM MiB | isolate MiB | workerd RSS +MiB |', '|---|---|---|---|---|---|---|',
        row(`slice load (${m.load.samples} samples)`, m.load.peak), row(`expert calls (${m.calls.samples} samples)`, m.calls.peak),
        row('3 s after the last call, idle (one sample)', { ...m.settled, isolateBytes: isolateBytes(m.settled) }), '');
      const peak = Math.max(m.load.peak.isolateBytes, m.calls.peak.isolateBytes);
      const js = Math.max(m.load.peak.jsUsedBytes, m.calls.peak.jsUsedBytes);
      const kept = isolateBytes(m.settled);
      out.push(`Isolate peak ${mib(peak)} MiB: ${peak <= SHARD_LIMIT_BYTES ? 'within' : 'OVER'} the ${mib(SHARD_LIMIT_BYTES)} MiB a shard may use` +
        `; idle after the calls it holds ${mib(kept)} MiB (${kept <= SHARD_LIMIT_BYTES ? 'within' : 'OVER'}). What the peak adds over that is ArrayBuffer backing stores: spent R2 reads while loading, and each call's frames and result arrays, garbage V8 had not collected yet.`,
        `JS heap peak ${mib(js)} MiB (allocated ${mib(Math.max(m.load.peak.jsTotalBytes, m.calls.peak.jsTotalBytes))} MiB) against SHARD_JS_BYTES = ${mib(s.shardJsEstimate)} MiB (src/planning/shard-memory.ts).`);
    }
  }
  return out.join('\n') + '\n';
}

/**
 * Writes the run; a partial one (--only) keeps the other parts of the recorded run, each part with the command,
 * date and load it was measured under.
 */
export async function recordTiers(run: TiersRun): Promise<void> {
  let old: TiersRun | null = null;
  try {
    old = JSON.parse(await readFile(JSON_PATH, 'utf8')) as TiersRun;
  } catch {
    // first run
  }
  const stamp = { command: run.command, date: run.date, commit: run.commit, uptime: run.uptime };
  if (run.configs.length) run.configsFrom = stamp;
  else if (old) Object.assign(run, { configs: old.configs, configsFrom: old.configsFrom ?? stampOf(old) });
  if (run.shard) {
    run.shard.from = stamp;
    if (old?.shard && !run.shard.cold.length) run.shard.cold = old.shard.cold;
    if (old?.shard && !run.shard.memory) run.shard.memory = old.shard.memory;
  } else if (old?.shard) run.shard = { ...old.shard, from: old.shard.from ?? stampOf(old) };
  await writeFile(JSON_PATH, JSON.stringify(run, null, 2) + '\n');
  await writeFile(MD_PATH, renderTiers(run));
}

export type { IsolateSample };

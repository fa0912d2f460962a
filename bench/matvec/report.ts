// Turns case results into the recorded form: bench/results/matvec.json records and the bench/results/matvec.md
// table (GB/s and ratio to the streaming read measured in the same rounds, per runtime).
import type { MachineInfo } from './machine';
import { median, type CaseResult, type Executor, type MeasureOptions, type Quant } from './measure';

export type Runtime = 'node' | 'workerd';

export const TARGET_Q8_RATIO = 0.75;

export interface MatvecRecord {
  name: string;
  quant: Quant;
  shape: [number, number]; // [rows, cols]
  runtime: Runtime;
  executor: Executor;
  gbps: number; // median over rounds of the mat-vec's weight bytes per second (1 GB = 1e9 B)
  ratio_to_stream: number; // median over rounds of (mat-vec GB/s / streaming-read GB/s of the same round)
  stream_gbps: number; // median over rounds of the streaming read
  ratio_range: [number, number]; // lowest and highest per-round ratio: the noise
  mat_bytes: number; // one matrix in kernel memory (quants + f32 scales)
  copies: number; // copies rotated through (together > poolBytes)
  rounds: { gbps: number[]; stream_gbps: number[] };
}

export interface MatvecDoc {
  benchmark: 'matvec';
  date: string;
  command: string;
  machine: MachineInfo;
  options: MeasureOptions;
  defaultModel: string; // where the default model's shapes came from
  target: { quant: 'q8_0'; ratio_to_stream: number };
  records: MatvecRecord[];
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

export function toRecord(r: CaseResult, runtime: Runtime): MatvecRecord {
  const ratios = r.gbps.map((g, i) => g / r.streamGbps[i]);
  return {
    name: r.name,
    quant: r.quant,
    shape: [r.rows, r.cols],
    runtime,
    executor: r.executor,
    gbps: r3(median(r.gbps)),
    ratio_to_stream: r3(median(ratios)),
    stream_gbps: r3(median(r.streamGbps)),
    ratio_range: [r3(Math.min(...ratios)), r3(Math.max(...ratios))],
    mat_bytes: r.matBytes,
    copies: r.copies,
    rounds: { gbps: r.gbps.map(r3), stream_gbps: r.streamGbps.map(r3) },
  };
}

/** Best q8_0 ratio per runtime and shape: the executor the Worker would pick should meet the target. */
function targetLines(records: readonly MatvecRecord[]): string[] {
  const lines: string[] = [];
  for (const runtime of ['node', 'workerd'] as const) {
    const q8 = records.filter((r) => r.runtime === runtime && r.quant === 'q8_0');
    const shapes = [...new Set(q8.map((r) => `${r.name} ${r.shape.join('x')}`))];
    for (const s of shapes) {
      const best = q8.filter((r) => `${r.name} ${r.shape.join('x')}` === s).sort((a, b) => b.ratio_to_stream - a.ratio_to_stream)[0];
      const met = best.ratio_to_stream >= TARGET_Q8_RATIO ? 'met' : 'NOT met';
      lines.push(`- ${runtime}, ${s}: best ${best.executor} ${best.ratio_to_stream.toFixed(2)} -> ${met}`);
    }
  }
  return lines;
}

export function renderMarkdown(doc: MatvecDoc): string {
  const m = doc.machine;
  const o = doc.options;
  const key = (r: MatvecRecord) => `${r.name}|${r.shape.join('x')}|${r.quant}|${r.executor}`;
  const byKey = new Map<string, Partial<Record<Runtime, MatvecRecord>>>();
  for (const r of doc.records) byKey.set(key(r), { ...byKey.get(key(r)), [r.runtime]: r });
  const cell = (r: MatvecRecord | undefined) =>
    r ? `${r.gbps.toFixed(2)} | ${r.stream_gbps.toFixed(1)} | ${r.ratio_to_stream.toFixed(2)} (${r.ratio_range[0].toFixed(2)}-${r.ratio_range[1].toFixed(2)})` : '- | - | -';
  const rows = [...byKey.values()].map((v) => {
    const r = (v.node ?? v.workerd)!;
    return `| ${r.name} | ${r.shape.join('x')} | ${r.quant} | ${r.executor} | ${cell(v.node)} | ${cell(v.workerd)} |`;
  });
  const streamRow = (rt: Runtime) => {
    const s = doc.records.filter((r) => r.runtime === rt).flatMap((r) => r.rounds.stream_gbps);
    return s.length ? `| ${rt} | ${median(s).toFixed(2)} | ${Math.min(...s).toFixed(2)} | ${Math.max(...s).toFixed(2)} | ${s.length} |` : `| ${rt} | - | - | - | 0 |`;
  };
  return [
    '# Mat-vec bandwidth: q8_0 / q4_0 expert shapes vs a WASM v128 streaming read',
    '',
    `Recorded ${doc.date} with \`${doc.command}\` (see bench/README.md for the method).`,
    '',
    `- CPU: ${m.cpu} (${m.cpuId}), ${m.cores} cores, L3 ${m.l3 ?? '?'}; load average at start ${m.loadavg.join(' / ')}`,
    `- Node ${m.node}; workerd ${m.workerd} (wrangler ${m.wrangler})`,
    `- Default model shapes: ${doc.defaultModel}`,
    `- Options: ${o.rounds} rounds x ${o.minMs} ms per kind in ${o.slices} alternating slices; weight pool > ${o.poolBytes >> 20} MiB; stream buffer ${o.streamBytes >> 20} MiB`,
    '',
    `Target: q8_0 >= ${doc.target.ratio_to_stream} of the streaming read.`,
    '',
    ...targetLines(doc.records),
    '',
    'GB/s = weight bytes in kernel memory (quants + f32 scales) per second, median of rounds; stream = the',
    'streaming read timed in the same rounds (median). Ratio = median of per-round (mat-vec GB/s / stream GB/s),',
    'with the lowest-highest per-round ratio in brackets.',
    '',
    '| shape | rows x cols | quant | executor | Node GB/s | stream | ratio | workerd GB/s | stream | ratio |',
    '|---|---|---|---|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'Streaming read (stream_read of kernels-simd.wasm), over all rounds of all cases:',
    '',
    '| runtime | median GB/s | min | max | rounds |',
    '|---|---:|---:|---:|---:|',
    streamRow('node'),
    streamRow('workerd'),
    '',
  ].join('\n');
}

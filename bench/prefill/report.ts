// bench:prefill's results: their shape (bench/results/prefill.json, which the cost model reads), the crossover
// arithmetic, and the markdown table.
import type { MachineInfo } from '../matvec/machine';

export interface TtftRow {
  model: string;
  where: 'local' | 'remote';
  promptTokens: number;
  /** injected round trip (remote only) */
  rttMs: number;
  /** best over rounds: request -> first token's logits */
  ms: number;
  /** bytes of the KV stream received (remote) */
  kvBytes: number;
}

export interface ThroughputRow {
  model: string;
  device: string;
  threads: number;
  concurrency: number;
  promptTokens: number;
  tokensPerSecond: number;
}

export interface PrefillResults {
  date: string;
  machine: MachineInfo;
  device: string;
  deviceNote: string;
  threads: number;
  linkMbps: number;
  kvType: string;
  ttft: TtftRow[];
  /** the prompt length from which remote is faster (null: never within the fit; 0: always) */
  crossovers: { model: string; rttMs: number; tokens: number | null }[];
  kvBytesPerToken: Record<string, Record<string, number>>;
  rows: ThroughputRow[];
}

/** Least-squares line ms = a + b * tokens through the points. */
function fit(points: [number, number][]): { a: number; b: number } {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  const b = sxx === 0 ? 0 : points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0) / sxx;
  return { a: my - b * mx, b };
}

/**
 * Where the remote line (at that round trip) crosses below the local one, from straight-line fits of TTFT against
 * prompt length: 0 when remote is faster everywhere, null when it never is.
 */
export function crossover(rows: readonly TtftRow[], model: string, rttMs: number): number | null {
  const pts = (where: 'local' | 'remote') => rows.filter((r) => r.model === model && r.where === where && (where === 'local' || r.rttMs === rttMs)).map((r): [number, number] => [r.promptTokens, r.ms]);
  const l = fit(pts('local'));
  const r = fit(pts('remote'));
  if (r.a <= l.a && r.b <= l.b) return 0;
  if (r.b >= l.b) return null;
  return Math.max(0, Math.ceil((r.a - l.a) / (l.b - r.b)));
}

export function renderPrefill(r: PrefillResults): string {
  const out: string[] = [];
  out.push('# Prefill: local (the Worker) vs remote (the backend\'s prefill call + KV stream)', '');
  out.push(`Measured ${r.date.slice(0, 16)} on ${r.machine.cpu} (${r.machine.cores} cores, load ${r.machine.loadavg.map((x) => x.toFixed(2)).join(' ')}), Node ${r.machine.node}.`);
  out.push(`Backend: ${r.deviceNote}. Link: injected round trip, ${r.linkMbps} Mbit/s (tools/dev/fault-proxy.ts \`link\` mode). KV cache ${r.kvType}.`);
  out.push('Reproduce: `npm run bench:prefill`. Times are the best of the rounds, request to the first token\'s logits.', '');
  for (const model of [...new Set(r.ttft.map((t) => t.model))]) {
    const rtts = [...new Set(r.ttft.filter((t) => t.model === model && t.where === 'remote').map((t) => t.rttMs))];
    out.push(`## ${model}`, '');
    out.push(`| prompt tokens | local ms | ${rtts.map((x) => `remote ms (${x} ms RTT)`).join(' | ')} | remote / local (${rtts[0]} ms) | KV MiB received |`);
    out.push(`|---|---|${rtts.map(() => '---').join('|')}|---|---|`);
    for (const n of [...new Set(r.ttft.filter((t) => t.model === model).map((t) => t.promptTokens))]) {
      const l = r.ttft.find((t) => t.model === model && t.where === 'local' && t.promptTokens === n)!;
      const rs = rtts.map((x) => r.ttft.find((t) => t.model === model && t.where === 'remote' && t.promptTokens === n && t.rttMs === x)!);
      out.push(`| ${n} | ${l.ms.toFixed(0)} | ${rs.map((x) => x.ms.toFixed(0)).join(' | ')} | ${(rs[0].ms / l.ms).toFixed(2)} | ${(rs[0].kvBytes / 2 ** 20).toFixed(2)} |`);
    }
    out.push('', `Crossover (remote faster from this many prompt tokens, straight-line fits): ${r.crossovers.filter((c) => c.model === model).map((c) => `${c.rttMs} ms RTT: ${c.tokens === null ? 'never' : c.tokens}`).join('; ')}.`, '');
    const kv = r.kvBytesPerToken[model] ?? {};
    out.push(`KV bytes per prompt token received (frames included): ${Object.entries(kv).map(([t, b]) => `${t} ${b.toFixed(0)}`).join(', ')}.`, '');
    const tp = r.rows.filter((x) => x.model === model);
    if (tp.length) {
      out.push(`Backend prefill throughput (${tp[0].promptTokens}-token prompts, ${tp[0].device === 'cpu' ? `${tp[0].threads} threads` : tp[0].device}): ${tp.map((x) => `${x.concurrency} at once ${x.tokensPerSecond.toFixed(0)} tok/s`).join('; ')}.`, '');
    }
  }
  return out.join('\n') + '\n';
}

// bench:shapes' results: per-round samples summarized into cases (medians of per-round ratios, decode against its
// bound), bench/results/shapes.md for people, and the one line per run of bench/results/history.md.
import type { KvCacheType } from '../../src/engine/kv-cache';
import type { Manifest } from '../../src/format/manifest';
import type { MachineInfo } from '../matvec/machine';
import { median } from '../matvec/measure';
import type { ShapesOptions } from './args';
import { decodeRunBytes, type ByteLayout } from './bound';
import { LLAMA, NODE, WLLAMA } from './engines';

/** One engine's round on one (model, KV type, prompt): prefill of the prompt, then `decode` greedy tokens. */
export interface RoundSample {
  model: string;
  kv: KvCacheType;
  engine: string;
  layout: ByteLayout;
  attention: string;
  prompt: number;
  decode: number;
  round: number;
  prefillMs: number;
  decodeMs: number;
  tokens: number[]; // greedy tokens (empty for wllama, which samples inside Chromium)
  streamGbps: number; // the yardstick around this round: the fastest of its slices just before and after
}

export interface ShapesCase {
  model: string;
  kv: KvCacheType;
  engine: string;
  attention: string;
  case: 'prefill' | 'decode';
  prompt_tokens: number; // prefill: the prompt; decode: the context before the first decoded token
  tokens: number; // tokens timed (prefill: the prompt; decode: the decoded ones)
  tps: number; // median over rounds
  tps_rounds: number[];
  ratio_to_llama: number | null; // median over rounds of (this tok/s / llama.cpp's in the same round)
  ratio_to_wllama: number | null;
  // decode only:
  bytes_layout?: ByteLayout; // heap: moe-edge's kernel memory; gguf: the GGUF's ggml blocks (llama.cpp, wllama)
  bytes_per_step?: number; // mean over the decoded steps (bound.ts decodeRunBytes)
  stream_gbps?: number; // median over its rounds of the yardstick around each (the fastest of its slices)
  stream_gbps_rounds?: number[];
  bound_tps?: number; // median over rounds of stream / bytes_per_step
  fraction_of_bound?: number; // median over rounds of tok/s / bound
  identical_tokens?: number | null; // leading greedy tokens equal to llama.cpp's (first round), of `tokens`
}

export interface ShapesDoc {
  benchmark: 'shapes';
  date: string;
  ended: string;
  commit: string;
  command: string;
  note: string | null;
  machine: MachineInfo & { node_llama_cpp: string };
  uptime: { start: string; end: string };
  options: Readonly<ShapesOptions>;
  kernels: Record<string, string>;
  models: { name: string; dir: string; manifest_sha256: string; gguf: string; quant: Manifest['quant']; architecture: Manifest['architecture'] }[];
  cases: ShapesCase[];
  notes: string[];
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r1 = (x: number) => Math.round(x * 10) / 10;

function leadingSame(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

export function summarize(samples: readonly RoundSample[], manifests: ReadonlyMap<string, Manifest>): ShapesCase[] {
  const groups = new Map<string, RoundSample[]>();
  for (const s of samples) {
    const key = `${s.model}\0${s.kv}\0${s.prompt}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const out: ShapesCase[] = [];
  for (const group of groups.values()) {
    const byEngine = new Map<string, RoundSample[]>();
    for (const s of group) byEngine.set(s.engine, [...(byEngine.get(s.engine) ?? []), s]);
    const inRound = (engine: string, round: number) => byEngine.get(engine)?.find((x) => x.round === round);
    for (const [engine, rs] of byEngine) {
      const s0 = rs[0];
      const ratioTo = (ref: string, ms: (x: RoundSample) => number) => {
        if (ref === engine) return null;
        const xs = rs.flatMap((x) => { const y = inRound(ref, x.round); return y ? [ms(y) / ms(x)] : []; });
        return xs.length ? r3(median(xs)) : null;
      };
      const prefillTps = rs.map((x) => (x.prompt / x.prefillMs) * 1000);
      out.push({
        model: s0.model, kv: s0.kv, engine, attention: s0.attention, case: 'prefill', prompt_tokens: s0.prompt, tokens: s0.prompt,
        tps: r1(median(prefillTps)), tps_rounds: prefillTps.map(r1),
        ratio_to_llama: ratioTo(LLAMA, (x) => x.prefillMs), ratio_to_wllama: ratioTo(WLLAMA, (x) => x.prefillMs),
      });
      const bytes = decodeRunBytes(manifests.get(s0.model)!, s0.prompt, s0.decode, s0.kv, s0.layout).total;
      const decodeTps = rs.map((x) => (x.decode / x.decodeMs) * 1000);
      const bound = rs.map((x) => (x.streamGbps * 1e9) / bytes);
      const llama0 = inRound(LLAMA, s0.round);
      out.push({
        model: s0.model, kv: s0.kv, engine, attention: s0.attention, case: 'decode', prompt_tokens: s0.prompt, tokens: s0.decode,
        tps: r1(median(decodeTps)), tps_rounds: decodeTps.map(r1),
        ratio_to_llama: ratioTo(LLAMA, (x) => x.decodeMs), ratio_to_wllama: ratioTo(WLLAMA, (x) => x.decodeMs),
        bytes_layout: s0.layout, bytes_per_step: Math.round(bytes), stream_gbps: r1(median(rs.map((x) => x.streamGbps))), stream_gbps_rounds: rs.map((x) => r1(x.streamGbps)),
        bound_tps: r1(median(bound)), fraction_of_bound: r3(median(decodeTps.map((t, i) => t / bound[i]))),
        identical_tokens: engine === LLAMA || !llama0 || s0.tokens.length === 0 ? null : leadingSame(s0.tokens, llama0.tokens),
      });
    }
  }
  return out;
}

const x = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(2)}x`);
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)}`;

export function renderMarkdown(d: ShapesDoc): string {
  const m = d.machine;
  const lines = [
    '# MoE at real shapes: moe-edge against llama.cpp and wllama, single thread',
    '',
    `${d.date} · commit ${d.commit} · \`${d.command}\`${d.note ? ` · note: ${d.note}` : ''}`,
    '',
    `${m.cpu} (${m.cpuId}), ${m.cores} cores, L3 ${m.l3 ?? '?'} · Node ${m.node}, workerd ${m.workerd}, node-llama-cpp ${m.node_llama_cpp} · moe-edge kernels: ${Object.entries(d.kernels).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '',
    `Load (\`uptime\`) at start: ${d.uptime.start}; at end: ${d.uptime.end}. On a shared machine read the per-round ratios, not bare tok/s.`,
    '',
    `Rounds: ${d.options.rounds}; engines take turns within every round; ratios are per round, then the median. Decode: ${d.options.decode} greedy tokens after the prompt. ` +
      '"of bound" = decode tok/s / (streaming-read GB/s / bytes one step reads): the v128 streaming read is timed in 3 slices just before and 3 just after every engine round, the fastest counts; bytes per step (bench/shapes/bound.ts) = trunk + top-k experts x 3 matrices per layer + KV cache at that context + output head, as moe-edge\'s kernel heap holds them (quants + f32 scales) for moe-edge, as the GGUF\'s ggml blocks (f16 scales) for llama.cpp and wllama. "same tokens": leading greedy tokens equal to llama.cpp\'s.',
    '',
  ];
  for (const model of d.models) {
    const cs = d.cases.filter((c) => c.model === model.name);
    if (!cs.length) continue;
    const a = model.architecture;
    lines.push(`## ${model.name}`, '', `${model.dir}: ${a.numLayers} layers, hidden ${a.hiddenSize}, ${a.numExperts} experts top-${a.topK}, expert FFN ${a.expertFfnSize}, vocab ${a.vocabSize}, trunk ${model.quant.trunk}, experts ${model.quant.experts}; GGUF ${model.gguf}`, '');
    lines.push('| KV | case | engine | tok/s | vs llama.cpp | vs wllama | MiB/step | bound tok/s | of bound | same tokens | attention |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of cs) {
      const what = c.case === 'prefill' ? `prefill ${c.prompt_tokens}` : `decode ${c.tokens} @ ${c.prompt_tokens}`;
      lines.push(`| ${c.kv} | ${what} | ${c.engine} | ${c.tps.toFixed(1)} | ${x(c.ratio_to_llama)} | ${x(c.ratio_to_wllama)} | ${c.bytes_per_step ? `${mib(c.bytes_per_step)} (${c.bytes_layout})` : ''} | ${c.bound_tps?.toFixed(1) ?? ''} | ${c.fraction_of_bound?.toFixed(3) ?? ''} | ${c.identical_tokens === undefined || c.identical_tokens === null ? '' : `${c.identical_tokens}/${c.tokens}`} | ${c.attention} |`);
    }
    lines.push('');
  }
  if (d.notes.length) lines.push('## Notes', '', ...d.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

export const HISTORY_HEADER = [
  '# bench:shapes history',
  '',
  'One line per recorded `npm run bench:shapes` run (appended by bench/shapes/run.ts): which commit, what changed (`--note`),',
  'and the headline numbers of moe-edge in Node per model at the run\'s first KV type: decode and prefill as ratios to',
  'llama.cpp in the same rounds, decode as a fraction of its memory bound. Full results of the latest run: shapes.md.',
  '',
  '| date | commit | note | headline (moe-edge Node: ratio to llama.cpp; of bound) |',
  '|---|---|---|---|',
  '',
].join('\n');

export function historyLine(d: ShapesDoc): string {
  const kv = d.options.kv[0];
  const parts: string[] = [];
  for (const model of d.models) {
    const c = (kind: 'prefill' | 'decode', p: number) => d.cases.find((y) => y.model === model.name && y.kv === kv && y.engine === NODE && y.case === kind && y.prompt_tokens === p);
    const bits: string[] = [];
    for (const p of d.options.prompts) {
      const dec = c('decode', p);
      if (dec) bits.push(`decode@${p} ${x(dec.ratio_to_llama)} (${dec.fraction_of_bound?.toFixed(2)} of bound)`);
    }
    for (const p of d.options.prompts) {
      const pre = c('prefill', p);
      if (pre) bits.push(`prefill ${p} ${x(pre.ratio_to_llama)}`);
    }
    if (bits.length) parts.push(`${model.name} kv ${kv}: ${bits.join(', ')}`);
  }
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return `| ${d.date.slice(0, 16).replace('T', ' ')} | ${d.commit} | ${cell(d.note ?? '')} | ${cell(parts.join('; '))} |`;
}

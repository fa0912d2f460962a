// Renders bench/results/latest.json as a markdown report (tables, targets) and an SVG bar chart (the PNG is
// converted from it with rsvg-convert, Debian's librsvg2-bin, when present).
import type { E2eRecord } from './e2e/run';
import type { KernelRecord, PeerRecord } from './kernels/run';
import type { MachineInfo } from './matvec/machine';

export interface LatestDoc {
  benchmark: 'all';
  date: string;
  command: string;
  machine: MachineInfo & { onnxruntime_web: string; node_llama_cpp: string };
  options: Record<string, unknown>;
  models: { default: string; granite: string; e2e: string };
  kernels: KernelRecord[];
  peers: PeerRecord[];
  e2e: E2eRecord[];
  notes: string[];
}

const TARGETS = { q8Ratio: 0.8, vsOrt: 3, vsLlamaWasm: 1.2, decodeVsWllama: 1.5, decodeVsLlama: 0.7 };

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));

export function renderMarkdown(doc: LatestDoc): string {
  const m = doc.machine;
  const out: string[] = [
    '# Benchmarks: moe-edge against its peers and the memory-bandwidth limit',
    '',
    `${doc.date} · \`${doc.command}\` · ${m.cpu} (${m.cpuId}), ${m.cores} cores, L3 ${m.l3 ?? '?'} · Node ${m.node}, workerd ${m.workerd}, onnxruntime-web ${m.onnxruntime_web}, node-llama-cpp ${m.node_llama_cpp} · load at start ${m.loadavg.join(' ')}`,
    '',
    'Everything single-threaded. Ratios are taken within one round (interleaved), then the median over rounds.',
    '',
    '## Expert FFN kernels (gate, up, down fused)',
    '',
    `Default model: ${doc.models.default}. Granite: ${doc.models.granite}. GB/s counts weight bytes as the kernel reads them (q8_0 1.125 B/weight, q4_0 0.625 with f32 scales), weights rotated out of cache.`,
    '',
    '| shape [H, I] | quant | batch | executor | GB/s | ratio to stream | stream GB/s | us/call |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const k of doc.kernels) out.push(`| ${k.name.replace('expert FFN ', '')} [${k.shape.join(', ')}] | ${k.quant} | ${k.batch} | ${k.executor} | ${f(k.gbps)} | ${f(k.ratio_to_stream, 3)} (${f(k.ratio_range[0])}-${f(k.ratio_range[1])}) | ${f(k.stream_gbps, 1)} | ${f(k.us_per_call, 1)} |`);
  out.push('', '### Peers on the same shapes', '', 'moe-edge speed-up = peer time / moe-edge time (best executor; q8_0, or q4_0 against 4-bit peers).', '', '| shape [H, I] | peer | weights | batch | GB/s (own bytes) | us/call | moe-edge speed-up |', '|---|---|---|---|---|---|---|');
  for (const p of doc.peers) out.push(`| [${p.shape.join(', ')}] | ${p.name} | ${p.quant} | ${p.batch} | ${f(p.gbps)} | ${f(p.us_per_call, 1)} | ${f(p.moe_edge_speedup)}x |`);
  out.push('', '## End to end: default model, single thread', '', `Model: ${doc.models.e2e}. 128-token prompt, 128 greedy tokens.`, '', '| engine | prefill tok/s | decode tok/s | prefill vs llama.cpp | decode vs llama.cpp | decode vs wllama |', '|---|---|---|---|---|---|');
  for (const e of doc.e2e) out.push(`| ${e.engine} | ${f(e.prefill_tps, 0)} | ${f(e.decode_tps, 0)} | ${f(e.prefill_ratio_to_llama)} | ${f(e.decode_ratio_to_llama)} | ${f(e.decode_ratio_to_wllama)} |${e.note ? ` ${e.note}` : ''}`);
  out.push('', '## Targets', '', ...targets(doc).map((t) => `- ${t}`));
  if (doc.notes.length) out.push('', '## Notes', '', ...doc.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}

function targets(doc: LatestDoc): string[] {
  const lines: string[] = [];
  const mark = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? 'met' : 'NOT met');
  const best = (name: string) => doc.kernels.filter((k) => k.name.endsWith(name) && k.quant === 'q8_0' && k.batch === 1).sort((a, b) => b.ratio_to_stream - a.ratio_to_stream)[0];
  for (const model of new Set(doc.kernels.map((k) => k.name.replace('expert FFN ', '')))) {
    const k = best(model);
    if (!k) continue;
    const shape = k.shape.join(',');
    lines.push(`q8_0 expert FFN at batch 1, ${model}: ratio to stream ${f(k.ratio_to_stream, 3)} (target >= ${TARGETS.q8Ratio}): ${mark(k.ratio_to_stream >= TARGETS.q8Ratio)}`);
    const ort = doc.peers.filter((p) => p.name.startsWith('onnxruntime') && p.batch === 1 && p.shape.join(',') === shape);
    const fastestOrt = ort.filter((p) => p.us_per_call !== null).sort((a, b) => a.us_per_call! - b.us_per_call!)[0];
    if (fastestOrt) lines.push(`vs onnxruntime-web's fastest op (${fastestOrt.name}), ${model}: ${f(fastestOrt.us_per_call! / k.us_per_call)}x (target >= ${TARGETS.vsOrt}x): ${mark(fastestOrt.us_per_call! / k.us_per_call >= TARGETS.vsOrt)}`);
    const peer = (prefix: string) => doc.peers.find((p) => p.name.startsWith(prefix) && p.batch === 1 && p.quant === 'q8_0' && p.shape.join(',') === shape);
    const speed = (p: PeerRecord | undefined) => (p?.us_per_call == null ? null : p.us_per_call / k.us_per_call);
    const wasm = speed(peer('llama.cpp WASM'));
    lines.push(`vs llama.cpp's WASM build (wllama), ${model}: ${f(wasm)}x (target >= ${TARGETS.vsLlamaWasm}x): ${mark(wasm === null ? null : wasm >= TARGETS.vsLlamaWasm)}`);
    lines.push(`vs native llama.cpp (for reference, no target), ${model}: ${f(speed(peer('llama.cpp (node-llama-cpp')))}x`);
  }
  const node = doc.e2e.find((e) => e.engine === 'moe-edge (Node)');
  const wd = doc.e2e.find((e) => e.engine === 'moe-edge (workerd)');
  for (const e of [node, wd]) {
    if (!e) continue;
    lines.push(`decode, ${e.engine}: ${f(e.decode_ratio_to_llama)}x native llama.cpp (target >= ${TARGETS.decodeVsLlama}x): ${mark(e.decode_ratio_to_llama === null ? null : e.decode_ratio_to_llama >= TARGETS.decodeVsLlama)}`);
    lines.push(`decode, ${e.engine}: ${f(e.decode_ratio_to_wllama)}x wllama (target >= ${TARGETS.decodeVsWllama}x): ${mark(e.decode_ratio_to_wllama === null ? null : e.decode_ratio_to_wllama >= TARGETS.decodeVsWllama)}`);
  }
  return lines;
}

// ---- chart ----

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Two panels of horizontal bars: batch-1 q8_0 expert FFN (us/call, lower is better) and e2e decode tokens/s. */
export function renderSvg(doc: LatestDoc): string {
  const W = 900, rowH = 22, pad = 10, labelW = 360, barW = W - labelW - 90;
  const panels: { title: string; rows: { label: string; value: number; ours: boolean }[]; unit: string }[] = [];
  for (const model of new Set(doc.kernels.map((k) => k.name.replace('expert FFN ', '')))) {
    const k = doc.kernels.filter((x) => x.name.endsWith(model) && x.quant === 'q8_0' && x.batch === 1);
    if (!k.length) continue;
    const shape = k[0].shape.join(',');
    const rows = [
      ...k.map((x) => ({ label: `moe-edge ${x.executor} q8_0`, value: x.us_per_call, ours: true })),
      ...doc.peers.filter((p) => p.batch === 1 && p.shape.join(',') === shape && (p.quant === 'q8_0' || p.name.startsWith('onnxruntime'))).map((p) => ({ label: `${p.name.replace(' (node-llama-cpp, native, 1 thread)', ' native').replace(' (wllama, Chromium, 1 thread)', ' (wllama)')} ${p.name.startsWith('llama') ? p.quant : ''}`.trim(), value: p.us_per_call ?? NaN, ours: false })),
    ];
    panels.push({ title: `Expert FFN, batch 1, ${model} [H=${k[0].shape[0]}, I=${k[0].shape[1]}]: microseconds per call (lower is better)`, rows, unit: 'us' });
  }
  if (doc.e2e.length) panels.push({ title: 'Default model, single thread: decode tokens/s (higher is better)', rows: doc.e2e.map((e) => ({ label: e.engine, value: e.decode_tps, ours: e.engine.startsWith('moe-edge') })), unit: 'tok/s' });
  if (doc.e2e.length) panels.push({ title: 'Default model, single thread: prefill tokens/s, 128-token prompt (higher is better)', rows: doc.e2e.map((e) => ({ label: e.engine, value: e.prefill_tps, ours: e.engine.startsWith('moe-edge') })), unit: 'tok/s' });
  let y = pad + 20;
  const parts: string[] = [`<text x="${pad}" y="${y}" font-size="16" font-weight="bold">moe-edge vs peers · ${esc(doc.date.slice(0, 10))} · ${esc(doc.machine.cpu)}</text>`];
  y += 14;
  for (const p of panels) {
    y += 24;
    parts.push(`<text x="${pad}" y="${y}" font-size="13" font-weight="bold">${esc(p.title)}</text>`);
    y += 8;
    const max = Math.max(...p.rows.map((r) => r.value).filter(Number.isFinite), 1e-9);
    for (const r of p.rows) {
      const w = Number.isFinite(r.value) ? Math.max(1, (r.value / max) * barW) : 0;
      parts.push(
        `<text x="${labelW - 6}" y="${y + 15}" font-size="12" text-anchor="end">${esc(r.label)}</text>`,
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${r.ours ? '#e8590c' : '#868e96'}"/>`,
        `<text x="${labelW + w + 5}" y="${y + 15}" font-size="12">${Number.isFinite(r.value) ? `${f(r.value, r.value >= 100 ? 0 : 1)} ${p.unit}` : 'below noise'}</text>`,
      );
      y += rowH;
    }
  }
  const H = y + pad + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif"><rect width="${W}" height="${H}" fill="white"/>${parts.join('')}</svg>\n`;
}

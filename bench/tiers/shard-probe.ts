// One expert shard alone as the primary Worker (ROLE = shard, its inspector on), for issue 13's per-isolate memory:
// its slice loads (GET /healthz), then expert calls of the sizes the front sends arrive over /v1/experts/ws from
// Node (prefill-sized: 64 tokens x top-8; decode-sized: 1 token x top-8), while tools/dev/isolate-memory.ts samples
// the JS heap (inspector), the WASM memory (/metrics) and the workerd RSS. Also the shard's cold start.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modelTagOf } from '../../src/format/digest';
import type { Manifest } from '../../src/format/manifest';
import { encodeRows } from '../../src/protocol/activations';
import { decodeFrame, encodeRequest } from '../../src/protocol/expert-wire';
import { isolateBytes, IsolateMemory, probeOf, type IsolateSample } from '../../tools/dev/isolate-memory';
import { startLocalWorker, type LocalWorker } from '../../tools/dev/local-worker';
import { residentBytes } from '../../tools/dev/workerd-process';

export interface ShardProbeOptions {
  modelDir: string;
  manifest: Manifest;
  persistTo: string;
  /** the layout object (seeded beside the model) and the shard of it to run */
  layout: string;
  shard: string;
  /** experts[l] this shard holds (to address calls to) */
  layers: readonly (readonly number[])[];
  everyMs: number;
  prefillCalls: number;
  decodeCalls: number;
  log: (l: string) => void;
}

export interface Peak {
  jsUsedBytes: number;
  jsTotalBytes: number;
  jsBackingStoreBytes: number;
  wasmMemoryBytes: number;
  isolateBytes: number;
  rssBytes: number;
}

export interface ShardMemory {
  healthz: { ms: number; experts: number; bytes: number };
  rssBeforeLoad: number;
  load: { samples: number; failed: number; peak: Peak };
  calls: { prefill: number; decode: number; prefillMs: number; decodeMsEach: number; samples: number; failed: number; peak: Peak };
  after: IsolateSample;
  /** SETTLE_MS after the last call, the isolate idle: what it holds once spent frames may have been collected */
  settled: IsolateSample;
}

const SETTLE_MS = 3000;

const shardVars = (o: Pick<ShardProbeOptions, 'manifest' | 'layout' | 'shard'>) => ({ ROLE: 'shard', SHARD: o.shard, SHARD_LAYOUT: o.layout, MODEL_ID: o.manifest.name });

function peakOf(samples: readonly IsolateSample[]): Peak {
  const max = (f: (s: IsolateSample) => number) => Math.max(0, ...samples.map(f));
  return {
    jsUsedBytes: max((s) => s.jsUsedBytes),
    jsTotalBytes: max((s) => s.jsTotalBytes),
    jsBackingStoreBytes: max((s) => s.jsBackingStoreBytes),
    wasmMemoryBytes: max((s) => s.wasmMemoryBytes),
    isolateBytes: max(isolateBytes),
    rssBytes: max((s) => s.rssBytes),
  };
}

async function healthz(w: LocalWorker, timeoutMs: number): Promise<{ ms: number; experts: number; bytes: number }> {
  const t0 = performance.now();
  const r = await fetch(`${w.url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
  const ms = performance.now() - t0;
  const body = (await r.json()) as { status: string; experts: number; bytes: number; error?: unknown };
  if (r.status !== 200 || body.status !== 'ok') throw new Error(`shard /healthz: ${r.status} ${JSON.stringify(body)}`);
  return { ms, experts: body.experts, bytes: body.bytes };
}

/** Fresh workerd, fresh isolate -> /healthz ok (its slice loaded), `samples` times; the inspector off. */
export async function shardColdStarts(o: Omit<ShardProbeOptions, 'everyMs' | 'prefillCalls' | 'decodeCalls' | 'layers'>, samples: number): Promise<{ startMs: number; healthzMs: number }[]> {
  const out: { startMs: number; healthzMs: number }[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const w = await startLocalWorker({ persistTo: o.persistTo, vars: shardVars(o) });
    try {
      const startMs = performance.now() - t0;
      const h = await healthz(w, 120_000);
      out.push({ startMs, healthzMs: h.ms });
      o.log(`shard cold start ${i + 1}/${samples}: workerd up in ${startMs.toFixed(0)} ms, /healthz ok (${h.experts} experts) in ${h.ms.toFixed(0)} ms`);
    } finally {
      await w.dispose();
    }
  }
  return out;
}

/** A WebSocket to the shard's /v1/experts/ws whose replies come back in order (one call at a time here). */
async function openSocket(url: string): Promise<{ call(frame: Uint8Array): Promise<Uint8Array>; close(): void }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/experts/ws`);
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error('the shard refused its WebSocket'));
  });
  let waiting: ((b: Uint8Array) => void) | null = null;
  ws.onmessage = (ev) => waiting?.(new Uint8Array(ev.data as ArrayBuffer));
  return {
    call: (frame) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no reply from the shard in 60 s')), 60_000);
      waiting = (b) => {
        clearTimeout(t);
        resolve(b);
      };
      ws.send(frame);
    }),
    close: () => ws.close(),
  };
}

/** Random activations of nTok tokens, q8_0 as the front sends them for quantized experts. */
function activations(nTok: number, hidden: number) {
  const x = new Float32Array(nTok * hidden).map(() => Math.random() * 2 - 1);
  return encodeRows(x, hidden, Array.from({ length: nTok }, (_, i) => i), 'q8_0');
}

export async function shardMemory(o: ShardProbeOptions): Promise<ShardMemory> {
  const H = o.manifest.architecture.hiddenSize;
  const K = o.manifest.architecture.topK;
  const tag = await modelTagOf(new Uint8Array(await readFile(join(o.modelDir, 'manifest.json'))));
  // a layer where the shard holds top-k experts, so one call can carry 64 x top-k pairs (its worst case)
  const layer = o.layers.findIndex((row) => row.length >= K);
  if (layer < 0) throw new Error(`the probe shard holds fewer than ${K} experts in every layer`);
  const picks = o.layers[layer].slice(0, K);

  const w = await startLocalWorker({ inspector: true, inspectorPort: 0, persistTo: o.persistTo, vars: shardVars(o) });
  try {
    const r = await fetch(`${w.url}/metrics`); // starts the isolate (and its workerd), loads nothing
    await r.text();
    const probe = await probeOf(w, o.manifest.name);
    const mem = await IsolateMemory.connect(probe);
    const pid = probe.pid;
    const rssBeforeLoad = residentBytes(pid).rss;
    const loadSampler = mem.every(o.everyMs);
    const h = await healthz(w, 120_000);
    const load = await loadSampler.stop();
    o.log(`shard slice loaded: ${h.experts} experts, ${(h.bytes / 2 ** 20).toFixed(1)} MiB in ${h.ms.toFixed(0)} ms (inspector on)`);

    const sock = await openSocket(w.url);
    const callSampler = mem.every(o.everyMs);
    let id = 1;
    const frame = (nTok: number) => {
      const tokens: number[] = [];
      const experts: number[] = [];
      for (let t = 0; t < nTok; t++) {
        for (const e of picks) {
          tokens.push(t);
          experts.push(e);
        }
      }
      return encodeRequest({
        requestId: id++, modelTag: tag, combine: false, resultDType: 'f32', layer, hidden: H, nTok,
        tokens, experts, weights: experts.map(() => 1 / K), activations: activations(nTok, H),
      });
    };
    const check = (b: Uint8Array) => {
      const f = decodeFrame(b);
      if (f.kind !== 'result') throw new Error(`the shard answered ${f.kind}: ${JSON.stringify(f)}`.slice(0, 400));
    };
    let t0 = performance.now();
    for (let i = 0; i < o.prefillCalls; i++) check(await sock.call(frame(64)));
    const prefillMs = (performance.now() - t0) / Math.max(1, o.prefillCalls);
    t0 = performance.now();
    for (let i = 0; i < o.decodeCalls; i++) check(await sock.call(frame(1)));
    const decodeMsEach = (performance.now() - t0) / Math.max(1, o.decodeCalls);
    // one more prefill-sized call after the decode ones: the scratch at its largest again, late in the isolate's life
    check(await sock.call(frame(64)));
    const calls = await callSampler.stop();
    sock.close();
    const after = await mem.sample();
    // the inspector's HeapProfiler.collectGarbage gets no answer in workerd: let the isolate idle instead
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const settled = await mem.sample();
    mem.close();
    return {
      healthz: h,
      rssBeforeLoad,
      load: { samples: load.samples.length, failed: load.failed, peak: peakOf(load.samples) },
      calls: { prefill: o.prefillCalls + 1, decode: o.decodeCalls, prefillMs, decodeMsEach, samples: calls.samples.length, failed: calls.failed, peak: peakOf([...calls.samples, after]) },
      after,
      settled,
    };
  } finally {
    await w.dispose();
  }
}

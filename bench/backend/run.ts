// Backend throughput: expert calls per second at 1, 4 and 16 concurrent generations, each a WebSocket session
// sending one layer's cold call at a time (as the Worker does), against the real backend process on loopback.
//   npx tsx bench/backend/run.ts [--model models/default] [--device cpu] [--threads n] [--seconds 3] [--concurrency 1,4,16]
//                                [--out bench/results/backend] [--no-record]
// --out names the .json/.md pair to write (bench/gpu/device-check.sh records a GPU machine's rows beside the others).
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseManifest } from '../../src/format/manifest';
import { activationDTypeFor, encodeActivations } from '../../src/protocol/activations';
import { decodeFrame, encodeRequest } from '../../src/protocol/expert-wire';
import { modelTagOf } from '../../src/format/digest';
import { startBackend, type BackendProcess } from '../../tools/dev/backend';
import { machineInfo } from '../matvec/machine';

const { values: opts } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/default' },
    device: { type: 'string', default: 'cpu' },
    threads: { type: 'string' },
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '1,4,16' },
    out: { type: 'string', default: 'bench/results/backend' },
    'no-record': { type: 'boolean', default: false },
  },
});

const TOKEN = 'bench-token';
const seconds = Number(opts.seconds);
const manifestBytes = new Uint8Array(await readFile(`${opts.model}/manifest.json`));
const manifest = parseManifest(JSON.parse(new TextDecoder().decode(manifestBytes)));
const tag = await modelTagOf(manifestBytes);
const a = manifest.architecture;
const act = activationDTypeFor(manifest.quant.experts);

interface Scenario { name: string; nTok: number }
const scenarios: Scenario[] = [
  { name: 'decode (1 token x top-k)', nTok: 1 },
  { name: 'prefill (64 tokens x top-k)', nTok: 64 },
];

interface Row {
  scenario: string;
  concurrency: number;
  calls: number;
  callsPerSec: number;
  pairsPerSec: number;
  p50ms: number;
  p99ms: number;
  callsPerBatch: number;
}

/** One generation: its own socket, calls one after another over the layers, until `until`. */
async function generation(b: BackendProcess, s: Scenario, seed: number, until: number, lat: number[]): Promise<number> {
  const ws = new WebSocket(`${b.url.replace('http', 'ws')}/v1/experts/ws`, { headers: { authorization: `Bearer ${TOKEN}` } } as unknown as string[]);
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => { ws.onopen = () => resolve(); ws.onerror = () => reject(new Error('ws refused')); });
  let next: ((d: ArrayBuffer) => void) | null = null;
  ws.onmessage = (ev) => next?.(ev.data as ArrayBuffer);
  let rnd = seed;
  const rand = (n: number) => { rnd = (Math.imul(rnd, 1664525) + 1013904223) >>> 0; return rnd % n; };
  const x = new Float32Array(s.nTok * a.hiddenSize).map(() => rand(2000) / 1000 - 1);
  const activations = encodeActivations(x, act);
  let calls = 0;
  while (performance.now() < until) {
    const tokens: number[] = [];
    const experts: number[] = [];
    for (let t = 0; t < s.nTok; t++) {
      const first = rand(a.numExperts);
      for (let k = 0; k < a.topK; k++) { tokens.push(t); experts.push((first + k) % a.numExperts); }
    }
    const requestId = ++calls;
    const frame = encodeRequest({ requestId, modelTag: tag, combine: false, layer: calls % a.numLayers, hidden: a.hiddenSize, nTok: s.nTok,
      tokens, experts, weights: tokens.map(() => 0.5), activations, resultDType: 'f32' });
    const t0 = performance.now();
    const reply = await new Promise<ArrayBuffer>((resolve) => { next = resolve; ws.send(frame as Uint8Array<ArrayBuffer>); });
    lat.push(performance.now() - t0);
    const f = decodeFrame(new Uint8Array(reply));
    if (f.kind !== 'result' || f.requestId !== requestId) throw new Error(`unexpected reply ${f.kind}`);
  }
  ws.close();
  return calls;
}

async function metric(b: BackendProcess, name: string): Promise<number> {
  const text = await (await fetch(`${b.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

const pct = (xs: number[], p: number) => xs.sort((u, v) => u - v)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

// a large model on a GPU loads and digest-checks for a while: wait for it
const backend = await startBackend({ model: opts.model, device: opts.device, args: opts.threads ? ['--threads', opts.threads] : [], token: TOKEN, timeoutMs: 900_000 });
const health = await (await fetch(`${backend.url}/healthz`)).json() as { device: string };
const rows: Row[] = [];
try {
  for (const s of scenarios) {
    for (const c of opts.concurrency.split(',').map(Number)) {
      await Promise.all(Array.from({ length: c }, (_, i) => generation(backend, s, i + 1, performance.now() + 300, []))); // warm-up
      const [b0, k0] = [await metric(backend, 'moe_backend_batches_total'), await metric(backend, 'moe_backend_batched_calls_total')];
      const lat: number[] = [];
      const t0 = performance.now();
      const counts = await Promise.all(Array.from({ length: c }, (_, i) => generation(backend, s, 100 + i, t0 + seconds * 1000, lat)));
      const wall = (performance.now() - t0) / 1000;
      const [b1, k1] = [await metric(backend, 'moe_backend_batches_total'), await metric(backend, 'moe_backend_batched_calls_total')];
      const calls = counts.reduce((u, v) => u + v, 0);
      const row = {
        scenario: s.name, concurrency: c, calls, callsPerSec: calls / wall, pairsPerSec: (calls * s.nTok * a.topK) / wall,
        p50ms: pct(lat, 0.5), p99ms: pct(lat, 0.99), callsPerBatch: (k1 - k0) / (b1 - b0),
      };
      rows.push(row);
      console.log(`${s.name.padEnd(28)} c=${String(c).padStart(2)}  ${row.callsPerSec.toFixed(0).padStart(6)} calls/s  ${row.pairsPerSec.toFixed(0).padStart(7)} pairs/s  ` +
        `p50 ${row.p50ms.toFixed(2)} ms  p99 ${row.p99ms.toFixed(2)} ms  ${row.callsPerBatch.toFixed(1)} calls/batch`);
    }
  }
} finally {
  await backend.stop();
}

if (!opts['no-record']) {
  const machine = machineInfo();
  const when = new Date().toISOString();
  await writeFile(`${opts.out}.json`, JSON.stringify({ when, machine, model: manifest.name, device: health.device, act, seconds, rows }, null, 2) + '\n');
  const md = [
    '# Backend throughput: expert calls per second vs concurrent generations',
    '',
    `Recorded ${when} with \`npx tsx bench/backend/run.ts ${process.argv.slice(2).join(' ')}\`.`,
    '',
    `- Model ${manifest.name} (H ${a.hiddenSize}, I ${a.expertFfnSize}, ${a.numExperts} experts x ${a.numLayers} layers, top-${a.topK}, experts ${manifest.quant.experts}); activations ${act}, results f32`,
    `- Device ${health.device}; backend process on loopback, client (this script) on the same machine`,
    `- CPU: ${machine.cpu}, ${machine.cores} cores; Node ${machine.node}; load average at start ${machine.loadavg.map((l) => l.toFixed(2)).join(' / ')}`,
    `- Each generation is one WebSocket session sending one call at a time (layer after layer), ${seconds} s per row after a 0.3 s warm-up`,
    '',
    '| scenario | generations | calls/s | pairs/s | p50 ms | p99 ms | calls per device batch |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.scenario} | ${r.concurrency} | ${r.callsPerSec.toFixed(0)} | ${r.pairsPerSec.toFixed(0)} | ${r.p50ms.toFixed(2)} | ${r.p99ms.toFixed(2)} | ${r.callsPerBatch.toFixed(1)} |`),
    '',
  ].join('\n');
  await writeFile(`${opts.out}.md`, md);
  console.log(`recorded ${opts.out}.{json,md}`);
}

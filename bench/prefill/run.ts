// Prefill benchmark: time to first token against prompt length, prefilled here (the Worker's engine in Node) or on
// the backend (a real process; its KV stream through tools/dev/fault-proxy.ts's `link` mode in its own process:
// an injected round trip and a stated link bandwidth), per model; the KV bytes per prompt token of every KV-cache
// type, as received; the crossover length past which the backend is faster (REMOTE_PREFILL_MIN_TOKENS's default);
// and the backend's prefill throughput at 1, 4 and 16 concurrent prompts. By default the backend is the cpu device
// (the same WASM on worker threads) standing in for a GPU on this machine's cores: the results say so. On a machine
// with a GPU, --device webgpu runs the whole pass in WGSL (bench/gpu/device-check.sh does, --out elsewhere).
//   npm run bench:prefill [-- --models default,granite-shaped-q4_0 --lengths 64,256,1024,2048 --rtt 0,5,20 --mbps 1000
//                            --rounds 2 --kv q8_0 --device cpu --threads 2 --concurrency 1,4,16
//                            --out bench/results/prefill --no-record]
import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { Sequence } from '../../src/engine/forward';
import { KV_CACHE_TYPES, type KvCacheType } from '../../src/engine/kv-cache';
import { loadTextModel, type LocalModel } from '../../src/engine/load';
import { prefill } from '../../src/engine/prefill';
import { finishPrefill } from '../../src/engine/prefill-layers';
import { modelTagOf } from '../../src/format/digest';
import { loadNodeKernels } from '../../src/kernels/load-node';
import { remotePrefill } from '../../src/remote/remote-prefill';
import { fsSource } from '../../src/store/source-fs';
import { startBackend } from '../../tools/dev/backend';
import { spawnFaultProxy } from '../../tools/dev/fault-proxy-process';
import { machineInfo } from '../matvec/machine';
import { crossover, renderPrefill, type PrefillResults, type TtftRow } from './report';

const { values: o } = parseArgs({
  options: {
    models: { type: 'string', default: 'default,granite-shaped-q4_0' },
    lengths: { type: 'string', default: '64,256,1024,2048' },
    rtt: { type: 'string', default: '0,5,20' },
    mbps: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '2' },
    kv: { type: 'string', default: 'q8_0' },
    device: { type: 'string', default: 'cpu' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench/results/prefill' },
    concurrency: { type: 'string', default: '1,4,16' },
    'tp-tokens': { type: 'string', default: '256' },
    'no-record': { type: 'boolean', default: false },
  },
});
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const nums = (s: string) => list(s).map(Number);
const log = (l: string) => process.stderr.write(`bench:prefill: ${l}\n`);
const kvType = o.kv as KvCacheType;
const MBPS = Number(o.mbps);
const TOKEN = 'bench-prefill-token';
const dirOf = (m: string) => (m === 'default' ? 'models/default' : m.includes('/') ? m : `.cache/models/${m}`);

function promptOf(n: number, vocab: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + seed * 104729 + 11) % vocab);
}

/** ms from nothing to the first token's logits: prefill here. */
async function localTtft(m: LocalModel, tokens: number[], type: KvCacheType): Promise<number> {
  const seq = new Sequence(m.kernels, m.weights, tokens.length + 1, { kvType: type });
  try {
    const t0 = performance.now();
    await prefill(m.kernels, seq, m.expertExecutor, tokens, { logits: 'last' });
    return performance.now() - t0;
  } finally {
    seq.release();
  }
}

/** ms from nothing to the first token's logits: prefill on the backend at `url`, KV stream placed here. */
async function remoteTtft(m: LocalModel, url: string, tag: Uint8Array, tokens: number[], type: KvCacheType): Promise<{ ms: number; bytes: number }> {
  const seq = new Sequence(m.kernels, m.weights, tokens.length + 1, { kvType: type });
  try {
    const t0 = performance.now();
    const r = await remotePrefill(m.kernels.heap, seq, { url, token: TOKEN, timeoutMs: 600_000 }, tag, tokens);
    await finishPrefill(m.kernels, seq, m.expertExecutor, r.hidden, { logits: 'last' });
    return { ms: performance.now() - t0, bytes: r.bytes };
  } finally {
    seq.release();
  }
}

const results: PrefillResults = {
  date: new Date().toISOString(),
  machine: machineInfo(),
  device: o.device,
  deviceNote: o.device === 'cpu'
    ? `cpu device (the Worker's WASM kernels on ${o.threads} worker threads) standing in for a GPU, on the same ${machineInfo().cores}-core machine as the client`
    : `${o.device} device (filled in from the backend's /healthz below)`,
  threads: Number(o.threads),
  linkMbps: MBPS,
  kvType,
  ttft: [],
  crossovers: [],
  kvBytesPerToken: {},
  rows: [],
};
log(`load ${results.machine.loadavg.map((x) => x.toFixed(2)).join(' ')} on ${results.machine.cores} cores`);

for (const name of list(o.models)) {
  const dir = dirOf(name);
  const model = basename(dir);
  const [local, tag] = await Promise.all([
    loadNodeKernels().then((k) => loadTextModel(fsSource(dir), k)),
    readFile(`${dir}/manifest.json`).then((b) => modelTagOf(new Uint8Array(b))),
  ]);
  const a = local.manifest.architecture;
  const lengths = nums(o.lengths).filter((n) => n < a.contextLength);
  if (lengths.length < nums(o.lengths).length) log(`${model}: lengths of ${a.contextLength} tokens or more skipped (its context)`);
  log(`${model}: starting the backend (${o.device}${o.device === 'cpu' ? `, ${o.threads} threads` : ''})`);
  const backend = await startBackend({ token: TOKEN, model: dir, device: o.device, args: ['--threads', o.threads, '--max-prefills', '16'], timeoutMs: 900_000 });
  if (o.device !== 'cpu') {
    const health = (await (await fetch(`${backend.url}/healthz`)).json()) as { device: string };
    results.deviceNote = `${health.device}, on the same machine as the client (whose own prefill is the local column)`;
  }
  const proxy = await spawnFaultProxy(backend.url);
  try {
    await remoteTtft(local, backend.url, tag, promptOf(8, a.vocabSize, 0), kvType); // warm both sides
    await localTtft(local, promptOf(8, a.vocabSize, 0), kvType);
    const best = new Map<string, { ms: number; bytes: number }>();
    const keep = (key: string, r: { ms: number; bytes: number }) => {
      const b = best.get(key);
      if (!b || r.ms < b.ms) best.set(key, r);
    };
    for (let round = 0; round < Number(o.rounds); round++) {
      for (const n of lengths) {
        const tokens = promptOf(n, a.vocabSize, round + 1);
        keep(`local ${n}`, { ms: await localTtft(local, tokens, kvType), bytes: 0 });
        for (const rtt of nums(o.rtt)) keep(`remote ${n} ${rtt}`, await remoteTtft(local, `${proxy.url}/link/${rtt}/${MBPS}`, tag, tokens, kvType));
        log(`${model} round ${round + 1}: ${n} tokens done`);
      }
    }
    for (const n of lengths) {
      const l = best.get(`local ${n}`)!;
      results.ttft.push({ model, where: 'local', promptTokens: n, rttMs: 0, ms: l.ms, kvBytes: 0 } satisfies TtftRow);
      for (const rtt of nums(o.rtt)) {
        const r = best.get(`remote ${n} ${rtt}`)!;
        results.ttft.push({ model, where: 'remote', promptTokens: n, rttMs: rtt, ms: r.ms, kvBytes: r.bytes });
      }
    }
    for (const rtt of nums(o.rtt)) results.crossovers.push({ model, rttMs: rtt, tokens: crossover(results.ttft, model, rtt) });
    // KV bytes per prompt token as received, every type the model's heads allow
    results.kvBytesPerToken[model] = {};
    for (const t of KV_CACHE_TYPES) {
      if (t.startsWith('q') && a.headDim % 32 !== 0) continue;
      const n = Math.min(256, a.contextLength - 1);
      const r = await remoteTtft(local, backend.url, tag, promptOf(n, a.vocabSize, 9), t);
      results.kvBytesPerToken[model][t] = r.bytes / n;
    }
    // backend throughput: c prompts at once, straight to the backend
    const P = Math.min(Number(o['tp-tokens']), a.contextLength - 1);
    for (const c of nums(o.concurrency)) {
      const prompts = Array.from({ length: c }, (_, i) => promptOf(P, a.vocabSize, 100 + i));
      const t0 = performance.now();
      await Promise.all(prompts.map((p) => remoteTtft(local, backend.url, tag, p, kvType)));
      const s = (performance.now() - t0) / 1000;
      results.rows.push({ model, device: o.device, threads: Number(o.threads), concurrency: c, promptTokens: P, tokensPerSecond: (c * P) / s });
      log(`${model}: ${c} concurrent prefills of ${P} tokens: ${((c * P) / s).toFixed(0)} tok/s`);
    }
  } finally {
    proxy.stop();
    await backend.stop();
  }
}

const md = renderPrefill(results);
process.stdout.write(md);
if (!o['no-record']) {
  await writeFile(`${o.out}.json`, JSON.stringify(results, null, 2) + '\n');
  await writeFile(`${o.out}.md`, md);
  log(`recorded ${o.out}.{json,md}`);
}

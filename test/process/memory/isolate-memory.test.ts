// The isolate memory sampler (tools/dev/isolate-memory.ts) against a real Worker in local workerd with its
// inspector on: one sample reads the JS heap over the inspector, the WASM gauge from /metrics and workerd's RSS;
// heap snapshots and allocation sampling go through workerd's own inspector (bench/memory/snapshot.ts).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gaugeOf, isolateBytes, IsolateMemory, probeOf } from '../../../tools/dev/isolate-memory';
import { startLocalWorker, type LocalWorker } from '../../../tools/dev/local-worker';
import { summarizeSnapshot } from '../../../bench/memory/heap-summary';
import { seedLocalR2 } from '../../../tools/seed-local-r2';

const MODEL_DIR = 'models/default';
let dir: string;
let worker: LocalWorker | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-isolate-memory-'));
  await seedLocalR2({ model: MODEL_DIR, persistTo: dir, log: () => {} });
  worker = await startLocalWorker({ inspector: true, inspectorPort: 0, persistTo: dir, vars: { HOT_EXPERTS: 'none' } });
}, 60_000);

afterAll(async () => {
  await worker?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('isolate memory sampler', () => {
  it('samples the JS heap, the WASM memory /metrics reports and the workerd RSS of the loaded model', async () => {
    expect((await worker!.fetch(`${worker!.url}/healthz`)).status).toBe(200);
    const manifest = JSON.parse(await readFile(join(MODEL_DIR, 'manifest.json'), 'utf8')) as { name: string; objects: Record<string, { bytes: number }> };
    const model = 'default'; // MODEL_ID in wrangler.toml
    const probe = await probeOf(worker!, model);
    const sampler = await IsolateMemory.connect(probe);
    try {
      const s = await sampler.sample();
      const gauge = gaugeOf(await (await fetch(probe.metricsUrl)).text(), 'moe_wasm_memory_bytes', model);
      expect(s.jsUsedBytes).toBeGreaterThan(0);
      expect(s.jsTotalBytes).toBeGreaterThanOrEqual(s.jsUsedBytes);
      expect(s.wasmMemoryBytes).toBe(gauge); // nothing runs in between: the memory only grows with a load or a generation
      expect(s.wasmHeapUsedBytes).toBeGreaterThanOrEqual(manifest.objects['trunk.bin'].bytes);
      expect(s.wasmMemoryBytes).toBeGreaterThan(s.wasmHeapUsedBytes);
      expect(s.rssBytes).toBeGreaterThan(isolateBytes(s) - s.jsUsedBytes); // the process holds at least the isolate's buffers
    } finally {
      sampler.close();
    }
  });

  it("takes a heap snapshot through workerd's own inspector: live objects only, the model's WASM memory among them", async () => {
    expect((await worker!.fetch(`${worker!.url}/healthz`)).status).toBe(200);
    const probe = await probeOf(worker!, 'default');
    const mem = await IsolateMemory.connect(probe, { direct: true });
    try {
      const before = await mem.sample();
      const summary = summarizeSnapshot(await mem.heapSnapshot(30_000)); // ~1.5 s here: a lost answer fails by name
      const after = await mem.sample();
      // the snapshot collects garbage first, so the heap in use cannot have grown across it
      expect(after.jsUsedBytes).toBeLessThanOrEqual(before.jsUsedBytes);
      const buffers = summary.groups.find((g) => g.group === 'native:system / JSArrayBufferData');
      expect(buffers?.selfBytes).toBeGreaterThanOrEqual(after.wasmMemoryBytes);
      expect(summary.totalSelfBytes).toBeGreaterThan(buffers!.selfBytes);
      const { result, byFunction } = await mem.allocationsDuring(async () => (await worker!.fetch(`${worker!.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: 'default', prompt: 'Once upon a time', max_tokens: 8 }) })).status);
      expect(result).toBe(200);
      expect(byFunction.reduce((a, f) => a + f.bytes, 0)).toBeGreaterThan(0);
    } finally {
      mem.close();
    }
  });
});

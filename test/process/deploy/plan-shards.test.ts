// `npm run cli -- plan --shards ... --write <dir>`: the files it writes are what deploys a tier plan. The layout
// parses for the model, the front's hot set is disjoint from it and within its HOT_BUDGET_MB, wrangler reads
// every generated configuration as intended and builds the Worker from it offline (`deploy --dry-run`); on the
// granite-shaped model, the front's heap the plan counts agrees with the one bench:memory measured.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../../src/format/manifest';
import { expertHeapBytes, resolveHotSet } from '../../../src/hotset/resolve';
import { parseHotExperts } from '../../../src/hotset/spec';
import { PlannedHotSetSchema } from '../../../src/planning/hot-set-file';
import { SHARD_JS_BYTES, shardScratchBytes } from '../../../src/planning/shard-memory';
import { MAX_SHARDS, NO_SHARD, parseShardLayout } from '../../../src/shard/layout';
import { WRANGLER_OFFLINE_ENV } from '../../../tools/dev/offline-env';

const OFFLINE = { ...process.env, ...WRANGLER_OFFLINE_ENV, CI: 'true' };
const MiB = 2 ** 20;
const run = promisify(execFile);
const tsx = createRequire(import.meta.url).resolve('tsx/cli');
const wranglerBin = join(dirname(dirname(createRequire(import.meta.url).resolve('wrangler'))), 'bin', 'wrangler.js');
const plan = async (...args: string[]) => (await run(process.execPath, [tsx, 'tools/cli.ts', 'plan', ...args], { env: OFFLINE, maxBuffer: 1 << 24 })).stdout;
const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('plan --shards --write', () => {
  it('writes a layout, a front hot set and wrangler configurations that wrangler reads and builds', async () => {
    const manifest = parseManifest(JSON.parse(await readFile('models/default/manifest.json', 'utf8')));
    const a = manifest.architecture;
    const one = expertHeapBytes(manifest, 0, 0);
    // room for exactly 5 experts per shard, 2 on the front: a model of 4 x 8 experts leaves 32 - 12 on the GPU
    const shardMb = (SHARD_JS_BYTES + shardScratchBytes(a) + 5 * one + one / 2) / MiB;
    const dir = await mkdtemp(join(tmpdir(), 'moe-tiers-'));
    dirs.push(dir);
    const r = JSON.parse(await plan('--model', 'models/default', '--shards', '2', '--shard-budget-mb', String(shardMb), '--front-hot-mb', String((2.5 * one) / MiB), '--write', dir, '--json'));
    expect(r.tiers.shards.map((s: { experts: number }) => s.experts)).toEqual([5, 5]);
    expect(r.tiers.front.experts).toBe(2);
    expect(r.tiers.gpu.experts).toBe(a.numLayers * a.numExperts - 12);
    expect((await readdir(dir)).sort()).toEqual(['hot-set.json', 'shard-layout.json', 'wrangler.front.toml', 'wrangler.shard-0.toml', 'wrangler.shard-1.toml']);

    const layout = parseShardLayout(JSON.parse(await readFile(join(dir, 'shard-layout.json'), 'utf8')), manifest.name, a);
    expect(layout.doc.shards.map((s) => [s.binding, s.worker])).toEqual([['SHARD_0', 'moe-edge-shard-0'], ['SHARD_1', 'moe-edge-shard-1']]);
    expect([...layout.owner].filter((o) => o !== NO_SHARD)).toHaveLength(10);
    const hotSet = PlannedHotSetSchema.parse(JSON.parse(await readFile(join(dir, 'hot-set.json'), 'utf8')));
    for (const [l, experts] of Object.entries(hotSet.layers)) for (const e of experts) expect(layout.owner[Number(l) * a.numExperts + e], `hot ${l}/${e} is on a shard`).toBe(NO_SHARD);

    const { unstable_readConfig: readConfig } = await import('wrangler');
    const project = readConfig({ config: 'wrangler.toml' }, { hideWarnings: true });
    for (const [i, s] of layout.doc.shards.entries()) {
      const c = readConfig({ config: join(dir, `wrangler.shard-${i}.toml`) }, { hideWarnings: true });
      expect(c.name).toBe(s.worker);
      expect(c.main).toBe(resolve('src/worker.ts'));
      expect(c.workers_dev).toBe(false);
      expect(c.compatibility_date).toBe(project.compatibility_date);
      expect(c.compatibility_flags).toEqual(project.compatibility_flags);
      expect(c.rules).toEqual(project.rules);
      expect(c.r2_buckets.map((b: { binding: string; bucket_name?: string }) => [b.binding, b.bucket_name])).toEqual([['MODELS', 'moe-edge-models']]);
      expect(c.vars).toEqual({ ROLE: 'shard', SHARD: s.binding, SHARD_LAYOUT: 'shard-layout.json', MODEL_PREFIX: 'models', MODEL_ID: manifest.name });
    }
    const front = readConfig({ config: join(dir, 'wrangler.front.toml') }, { hideWarnings: true });
    expect(front.services.map((s: { binding: string; service: string }) => [s.binding, s.service])).toEqual(layout.doc.shards.map((s) => [s.binding, s.worker]));
    const vars = front.vars as Record<string, string>;
    expect(vars.SHARD_LAYOUT).toBe('shard-layout.json');
    expect(vars.MAX_PROMPT_TOKENS).toBe((project.vars as Record<string, string>).MAX_PROMPT_TOKENS);
    // the Worker takes the front's hot set from HOT_EXPERTS within HOT_BUDGET_MB, as it parses them
    const hot = resolveHotSet(parseHotExperts(vars.HOT_EXPERTS), manifest, Math.floor(Number(vars.HOT_BUDGET_MB) * MiB));
    expect(hot.layers.map((row) => [...row])).toEqual(Array.from({ length: a.numLayers }, (_, l) => hotSet.layers[String(l)] ?? []));

    for (const config of ['wrangler.shard-0.toml', 'wrangler.front.toml']) {
      const out = join(dir, `out-${config}`);
      const { stdout } = await run(process.execPath, [wranglerBin, 'deploy', '--dry-run', '-c', join(dir, config), '--outdir', out], { env: OFFLINE, maxBuffer: 1 << 24 });
      expect(stdout).toMatch(/--dry-run: exiting now/);
      expect((await readdir(out)).filter((f) => f.endsWith('.wasm'))).toHaveLength(3); // the kernels' two builds and xgrammar
    }
  });

  it('without --shards the report is the one it was; --write needs --shards and --model', async () => {
    expect(await plan('--model', 'models/default')).not.toMatch(/^Tiers:/m);
    await expect(plan('--model', 'models/default', '--write', '/tmp/x')).rejects.toThrow(/--write goes with --shards/);
    await expect(plan('--config', 'models/configs/granite-3.0-1b-a400m.json', '--shards', '2', '--write', '/tmp/x')).rejects.toThrow(/--write needs --model/);
    await expect(plan('--model', 'models/default', '--shards', String(MAX_SHARDS + 1))).rejects.toThrow(/--shards takes 0\.\.16 or all/);
  });
});

// granite's published config: the sizes the granite-shaped model is generated with (models/make-granite-shaped.ts),
// so `plan --config` plans exactly what `plan --model .cache/models/granite-shaped-q4_0` does, without the 720 MB
// of weights a fresh clone does not have
const GRANITE_CONFIG = 'models/configs/granite-3.0-1b-a400m.json';

describe('plan --shards at granite-3.0-1b-a400m\'s shapes, q4_0', () => {
  it('the front heap it plans agrees with bench:memory; the text shows the front, the shards and the GPU', async () => {
    const args = ['--config', GRANITE_CONFIG, '--quant', 'q4_0', '--context', '2048', '--kv-cache-type', 'q4_0', '--isolate-memory-mb', '120', '--shards', 'all'];
    const r = JSON.parse(await plan(...args, '--json'));
    const t = r.tiers;
    expect(t.allAtEdge.limit).toBeNull();
    expect(t.shards).toHaveLength(t.allAtEdge.needed);
    expect(t.gpu.experts).toBe(0);
    // what the front holds besides its hot experts: the trunk and one 2,048-position generation, as admission counts
    const heldMiB = 120 - t.front.room.bytes / MiB;
    const measured = JSON.parse(await readFile('bench/results/memory.json', 'utf8')) as { vars: Record<string, string>; phases: { label: string; peak: { wasmMemory: number } }[] }[];
    const run2048 = measured.find((m) => m.vars.ISOLATE_MEMORY_MB === '120' && m.vars.KV_CACHE_TYPE === 'q4_0' && m.vars.MODEL_ID === 'granite-shaped-q4_0');
    const phase = run2048?.phases.find((p) => p.label === 'one generation, 2048 positions');
    expect(phase, 'bench/results/memory.json records a 2,048-position generation of granite-shaped q4_0 at ISOLATE_MEMORY_MB=120').toBeDefined();
    expect(heldMiB).toBeGreaterThanOrEqual(phase!.peak.wasmMemory); // admission's bound errs on the safe side
    expect(heldMiB - phase!.peak.wasmMemory).toBeLessThan(2);
    const text = await plan(...args);
    expect(text).toMatch(/^front \(hot set\) +\d+ +[\d.]+ +[\d.]+%$/m);
    expect(text).toMatch(/^shard SHARD_0 +\d+ +[\d.]+ +[\d.]+%$/m);
    expect(text).toMatch(/^GPU backend +0 +0\.0 +0\.0%$/m);
    expect(text).toMatch(new RegExp(`all experts at the edge: ${t.allAtEdge.needed} shard\\(s\\) of 100\\.0 MiB`));
  });
});

// `npm run cli -- merge-experts` end to end: the default model pruned and merged to 6 experts per layer loads
// through the CLI like any converted model (the CLI's logits are the in-process engine's, and the GPU backend
// serving it cold gives the local logits), copies what it does not change byte for byte, keeps a qwen2_moe
// shared expert untouched, and refuses bad input with a clear error and nothing written.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, tensorNames, type Manifest } from '../../../src/format/manifest';
import { parseHotExperts } from '../../../src/hotset/spec';
import { loadTextModel } from '../../../src/engine/load';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { ServedModel } from '../../../src/runtime/served-model';
import { emptyCounts, ROUTING_STATS_FORMAT, addCounts, type RoutingStats } from '../../../src/routing/stats';
import { fsSource } from '../../../src/store/source-fs';
import { readVerified } from '../../../src/store/source';
import { buildCalibration, DEFAULTS } from '../../../models/calibration/build';
import { convert } from '../../../tools/convert';
import { startBackend, type BackendProcess } from '../../../tools/dev/backend';
import { mergeExperts } from '../../../tools/merge-experts';
import { loadProfiled, routeTokens } from '../../../tools/profile';
import { scoreTokens } from '../../../tools/score';
import { maxAbsDiff } from '../../helpers/logits';
import { splitLogits } from '../../helpers/split-score';
import { sharedPath } from '../../shared-dir';

const MODEL = 'models/default';
const run = promisify(execFile);
const tsx = createRequire(import.meta.url).resolve('tsx/cli');
const cli = (...args: string[]) => run(process.execPath, [tsx, 'tools/cli.ts', ...args], { maxBuffer: 64 << 20 });
/** The CLI's exit code and stderr for a run expected to fail. */
const cliFails = async (...args: string[]) => {
  try {
    await cli(...args);
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { code: err.code, stderr: err.stderr };
  }
  throw new Error(`merge-experts ${args.join(' ')} succeeded`);
};
const manifestOf = async (dir: string): Promise<Manifest> => parseManifest(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));

let dir: string;
let statsFile: string;
let calibration: string;
let original: Manifest;
let rewrittenExperts: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-edge-merge-'));
  const sets = await buildCalibration({ ...DEFAULTS, out: dir, corpus: sharedPath('corpus'), calibration: 20, heldout: 2 });
  calibration = sets.calibration;
  statsFile = join(dir, 'stats.json');
  await cli('profile', '--model', MODEL, '--prompts', calibration, '--out', statsFile, '--quiet');
  await cli('merge-experts', '--model', MODEL, '--stats', statsFile, '--keep', '6', '--method', 'prune', '--out', join(dir, 'prune6'));
  const merged = await cli('merge-experts', '--model', MODEL, '--stats', statsFile, '--keep', '0.75', '--method', 'merge', '--calibration', calibration, '--sample-tokens', '1024', '--out', join(dir, 'merge6'));
  // "layer 0: expert 4 (...) -> 1 (...)": the kept experts something was folded into are the ones rewritten
  rewrittenExperts = new Set([...merged.stderr.matchAll(/layer (\d+): expert \d+ .*-> (\d+)/g)].map((x) => `${x[1]}/${x[2]}`)).size;
  original = await manifestOf(MODEL);
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.each(['prune6', 'merge6'])('%s of the default model', (name) => {
  it('is a model folder of 6 experts per layer whose unchanged parts are the original\'s bytes', async () => {
    const m = await manifestOf(join(dir, name));
    expect(m.architecture).toEqual({ ...original.architecture, numExperts: 6 });
    expect(m.name).toBe(`default-${name.slice(0, 5)}6`);
    expect(Object.keys(m.objects).filter((o) => o.startsWith('experts/')).length).toBe(6 * original.architecture.numLayers);
    for (let l = 0; l < original.architecture.numLayers; l++) expect(m.tensors[tensorNames.router(l)].shape).toEqual([6, original.architecture.hiddenSize]);
    // every object's digest checked on read; every trunk tensor but the routers is the original's bytes
    const [trunk, trunk0] = await Promise.all([readVerified(fsSource(join(dir, name)), m, 'trunk.bin'), readVerified(fsSource(MODEL), original, 'trunk.bin')]);
    const routers = new Set(Array.from({ length: original.architecture.numLayers }, (_, l) => tensorNames.router(l)));
    for (const [t, e] of Object.entries(original.tensors)) {
      if (e.object !== 'trunk.bin' || routers.has(t)) continue;
      const f = m.tensors[t];
      expect(Buffer.from(trunk.subarray(f.offset, f.offset + f.bytes)).equals(Buffer.from(trunk0.subarray(e.offset, e.offset + e.bytes))), t).toBe(true);
    }
    expect(m.objects['tokenizer.json']).toEqual(original.objects['tokenizer.json']);
    // pruning copies every kept expert as it is; merging rewrites exactly the experts something was folded into
    const originals = new Set(Object.entries(original.objects).filter(([o]) => o.startsWith('experts/')).map(([, v]) => v.sha256));
    const copied = Object.entries(m.objects).filter(([o, v]) => o.startsWith('experts/') && originals.has(v.sha256)).length;
    expect(rewrittenExperts).toBeGreaterThanOrEqual(original.architecture.numLayers); // at least one per layer
    expect(copied).toBe(6 * original.architecture.numLayers - (name === 'prune6' ? 0 : rewrittenExperts));
  });

  it('the CLI\'s logits are the in-process engine\'s, and differ from the original model\'s', async () => {
    const tokens = [1, 90, 800, 33, 2047, 5, 600, 1200];
    const { stdout } = await cli('logits', '--model', join(dir, name), '--tokens', tokens.join(','), '--json');
    const fromCli = (JSON.parse(stdout) as { logits: number[][] }).logits;
    const model = await loadTextModel(fsSource(join(dir, name)), await loadNodeKernels());
    const here = await scoreTokens(model, tokens);
    expect(maxAbsDiff(fromCli, here)).toBe(0);
    const base = await scoreTokens(await loadTextModel(fsSource(MODEL), await loadNodeKernels()), tokens);
    expect(maxAbsDiff(base, here)).toBeGreaterThan(1e-3);
  });
});

describe('the GPU backend serves a merged model exactly', () => {
  let backend: BackendProcess;
  beforeAll(async () => {
    backend = await startBackend({ model: join(dir, 'merge6'), token: 'merge-test-token' });
  }, 60_000);
  afterAll(async () => backend?.stop());

  it('prefill and decode logits with every expert cold equal the all-local engine (<= 1e-4)', async () => {
    const served = (hot: string) => loadNodeKernels().then((k) => ServedModel.load(fsSource(join(dir, 'merge6')), k, { hotExperts: parseHotExperts(hot), budgetBytes: null }));
    const moe = { policy: 'remote' as const, degradedPolicy: 'error' as const, backend: { url: backend.url, token: backend.token, timeoutMs: 10_000 } };
    const all = await served('all');
    const tokens = all.encode('ROMEO:\nWhat light is this 12 + 30 = 42');
    const want = await splitLogits(all, tokens, moe, 8);
    const got = await splitLogits(await served('none'), tokens, moe, 8);
    expect(got.usage.cold_calls).toBeGreaterThan(0);
    expect(got.usage.degraded).toBeNull();
    expect(maxAbsDiff(got.rows, want.rows)).toBeLessThanOrEqual(1e-4);
  });
});

describe('qwen2_moe (shared expert)', () => {
  it('prune and merge keep the shared expert and its gate byte for byte; the result loads and runs', async () => {
    const src = join(dir, 'qwen2_moe');
    await convert({ inDir: sharedPath('fixtures', 'qwen2_moe'), outDir: src, quant: 'q8_0', name: 'qwen-tiny', warn: () => {} });
    const m0 = await manifestOf(src);
    const a = m0.architecture;
    expect(a.sharedExpertFfnSize).toBeGreaterThan(0);
    // routing statistics and calibration from token ids (the fixture has no tokenizer)
    const p = await loadProfiled(src);
    const seqs = Array.from({ length: 12 }, (_, s) => Array.from({ length: 40 }, (_, i) => (i * 7919 + s * 104729) % a.vocabSize));
    let overall = emptyCounts(a.numLayers, a.numExperts);
    for (const t of seqs) overall = addCounts(overall, (await routeTokens(p, t)).all);
    const stats: RoutingStats = { format: ROUTING_STATS_FORMAT, model: m0.name, numLayers: a.numLayers, numExperts: a.numExperts, topK: a.topK, overall, domains: {} };
    const shared = (l: number) => [tensorNames.sharedGate(l), tensorNames.sharedUp(l), tensorNames.sharedDown(l), tensorNames.sharedExpertGate(l)];
    const trunk0 = await readVerified(fsSource(src), m0, 'trunk.bin');
    for (const method of ['prune', 'merge'] as const) {
      const out = join(dir, `qwen-${method}`);
      const r = await mergeExperts({ model: src, stats, keep: '5', method, calibration: { tokens: seqs }, out });
      const m = await manifestOf(out);
      expect(m.architecture.numExperts).toBe(5);
      if (method === 'merge') expect(r.merged.length).toBe(3 * a.numLayers);
      const trunk = await readVerified(fsSource(out), m, 'trunk.bin');
      for (let l = 0; l < a.numLayers; l++) {
        for (const t of shared(l)) {
          const [e0, e] = [m0.tensors[t], m.tensors[t]];
          expect(e, t).toBeDefined();
          expect(Buffer.from(trunk.subarray(e.offset, e.offset + e.bytes)).equals(Buffer.from(trunk0.subarray(e0.offset, e0.offset + e0.bytes))), t).toBe(true);
        }
      }
      const model = await loadTextModel(fsSource(out), await loadNodeKernels());
      const logits = await scoreTokens(model, seqs[0].slice(0, 8));
      expect(logits.every((row) => row.every(Number.isFinite))).toBe(true);
    }
  }, 120_000);
});

describe('bad input: a clear error and nothing written', () => {
  it.each([
    [['--keep', '9'], /only 8 experts per layer/],
    [['--keep', '0'], /--keep "0": expected a number/],
    [['--keep', '1'], /fewer than the router's top-k \(2\)/],
    [['--keep', '6', '--method', 'merge'], /--method merge needs --calibration/],
    [['--keep', '6', '--method', 'fold'], /--method "fold": prune or merge/],
  ])('%j', async (flags, message) => {
    const out = join(dir, `bad-${flags.join('')}`);
    const r = await cliFails('merge-experts', '--model', MODEL, '--stats', statsFile, '--out', out, ...flags);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it('statistics of another model, or the model folder as --out', async () => {
    const other = join(dir, 'other-stats.json');
    await writeFile(other, JSON.stringify({ ...JSON.parse(await readFile(statsFile, 'utf8')), model: 'granite' }));
    const out = join(dir, 'bad-other');
    const r = await cliFails('merge-experts', '--model', MODEL, '--stats', other, '--keep', '6', '--method', 'prune', '--out', out);
    expect(r.stderr).toMatch(/routing statistics are of model "granite", not "default"/);
    expect(existsSync(out)).toBe(false);
    const merged = await manifestOf(join(dir, 'prune6'));
    const r2 = await cliFails('merge-experts', '--model', join(dir, 'prune6'), '--stats', statsFile, '--keep', '4', '--method', 'prune', '--out', join(dir, 'bad-merged'));
    expect(r2.stderr).toMatch(new RegExp(`of model "default", not "${merged.name}"`));
    const r3 = await cliFails('merge-experts', '--model', MODEL, '--stats', statsFile, '--keep', '6', '--method', 'prune', '--out', MODEL);
    expect(r3.stderr).toMatch(/--out must be another folder than --model/);
  });
});

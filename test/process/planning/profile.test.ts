// The offline pipeline on the committed default model: calibration prompts from the training split, the
// `profile` CLI writes statistics in the documented schema with a skill map, `plan-hot-set` writes a
// hot-set.json with profiles, and the skill map picks the right domain for held-out prompts well above chance.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../../../src/format/manifest';
import { PlannedHotSetSchema } from '../../../src/planning/hot-set-file';
import { edgeSizes, totalExpertBytes } from '../../../src/planning/sizes';
import { RoutingStatsSchema, type RoutingStats } from '../../../src/routing/stats';
import { buildCalibration, DEFAULTS, DOMAINS } from '../../../models/calibration/build';
import { skillAccuracy, type RoutedPrompt } from '../../../bench/hotset/measure';
import { loadProfiled, parsePrompts, promptTokens, routeTokens } from '../../../tools/profile';
import { sharedPath } from '../../shared-dir';

const MODEL = 'models/default';
const run = promisify(execFile);
const tsx = createRequire(import.meta.url).resolve('tsx/cli');
const cli = (...args: string[]) => run(process.execPath, [tsx, 'tools/cli.ts', ...args], { maxBuffer: 64 << 20 });

let dir: string;
let sets: Awaited<ReturnType<typeof buildCalibration>>;
let stats: RoutingStats;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-edge-planning-'));
  sets = await buildCalibration({ ...DEFAULTS, out: dir, corpus: sharedPath('corpus'), calibration: 40, heldout: 20 });
  await cli('profile', '--model', MODEL, '--prompts', sets.calibration, '--out', join(dir, 'stats.json'), '--quiet');
  stats = RoutingStatsSchema.parse(JSON.parse(await readFile(join(dir, 'stats.json'), 'utf8')));
}, 240_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('calibration prompt sets', () => {
  it('come from both splits of every domain, held-out >= 60 prompts', async () => {
    expect(sets.counts).toEqual(Object.fromEntries(DOMAINS.map((d) => [d, { calibration: 40, heldout: 20 }])));
    const held = parsePrompts(await readFile(sets.heldout, 'utf8'));
    expect(held.length).toBeGreaterThanOrEqual(60);
    const calib = new Set(parsePrompts(await readFile(sets.calibration, 'utf8')).map((p) => p.text));
    expect(held.filter((p) => calib.has(p.text) && p.text.length > 40)).toEqual([]); // no held-out window is a calibration window
  });
});

describe('npm run cli -- profile', () => {
  it('writes per layer x expert counts overall and per domain, and the skill map centroids', async () => {
    const manifest = JSON.parse(await readFile(join(MODEL, 'manifest.json'), 'utf8'));
    const a = manifest.architecture;
    expect(stats).toMatchObject({ model: manifest.name, numLayers: a.numLayers, numExperts: a.numExperts, topK: a.topK });
    expect(stats.overall.prompts).toBe(120);
    expect(Object.keys(stats.domains).sort()).toEqual([...DOMAINS].sort());
    expect(stats.overall.tokens).toBe(DOMAINS.reduce((s, d) => s + stats.domains[d].tokens, 0));
    expect(Object.keys(stats.skillMap!.centroids).sort()).toEqual([...DOMAINS].sort());
    for (const c of Object.values(stats.skillMap!.centroids)) for (const row of c) expect(row.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 9);
  });

  it('names the bad line of a prompts file', async () => {
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, '{"domain": "code", "text": "x"}\n{"text": "no domain"}\n');
    await expect(cli('profile', '--model', MODEL, '--prompts', bad)).rejects.toThrow(/bad\.jsonl:2/);
  });
});

describe('npm run cli -- plan-hot-set', () => {
  it('writes a hot-set.json with profiles and prints the expected hit rate per layer and overall', async () => {
    const out = join(dir, 'hot-set.json');
    const sizes = edgeSizes(parseManifest(JSON.parse(await readFile(join(MODEL, 'manifest.json'), 'utf8'))));
    const budgetMb = Math.ceil(((sizes.fixedBytes + totalExpertBytes(sizes) / 2) / 2 ** 20) * 1000) / 1000; // about half the experts
    const { stdout } = await cli('plan-hot-set', '--model', MODEL, '--stats', join(dir, 'stats.json'), '--budget-mb', String(budgetMb), '--profiles', '--out', out);
    const doc = PlannedHotSetSchema.parse(JSON.parse(await readFile(out, 'utf8')));
    expect(Object.keys(doc.profiles!).sort()).toEqual([...DOMAINS].sort());
    expect(doc.skillMap).toEqual(stats.skillMap);
    expect(doc.plan.budgetBytes).toBe(Math.floor(budgetMb * 2 ** 20));
    expect(doc.bytes).toBeLessThan(totalExpertBytes(sizes));
    expect(doc.plan.fixedBytes + doc.bytes).toBeLessThanOrEqual(doc.plan.budgetBytes);
    expect(stdout).toMatch(/layer\s+expected hit rate/);
    for (let l = 0; l < stats.numLayers; l++) expect(stdout).toMatch(new RegExp(`^\\s+${l}\\s+\\d+\\.\\d%`, 'm'));
    expect(stdout).toMatch(/^\s+all\s+\d+\.\d%/m);
  });

  it('refuses a budget smaller than the trunk', async () => {
    await expect(cli('plan-hot-set', '--model', MODEL, '--stats', join(dir, 'stats.json'), '--budget-mb', '0.001')).rejects.toThrow(/smaller than the trunk/);
  });
});

describe('skill map', () => {
  it('picks the right domain for held-out prompts far above chance, from the first half of each prompt', async () => {
    const p = await loadProfiled(MODEL);
    const routed: RoutedPrompt[] = [];
    for (const q of parsePrompts(await readFile(sets.heldout, 'utf8'))) {
      const tokens = promptTokens(p, q.text);
      const r = await routeTokens(p, tokens, Math.ceil(tokens.length / 2));
      routed.push({ domain: q.domain, prefix: r.prefix!, all: r.all });
    }
    const acc = skillAccuracy(stats.skillMap!, routed);
    expect(acc.total).toBeGreaterThanOrEqual(60);
    // chance is 1/3; 55% of 60 prompts is > 3 standard deviations above it
    expect(acc.accuracy).toBeGreaterThan(0.55);
  }, 120_000);
});

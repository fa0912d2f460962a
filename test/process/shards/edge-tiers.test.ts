// The tiers as deployed, locally: `wrangler dev` runs the front and two expert-shard Workers (one isolate each,
// service bindings between them, tools/dev/local-workers.ts) over a local R2 holding the scaled-down granite-shaped
// model (2 layers at granite's widths, q4_0), with the real GPU backend for what neither holds. Greedy output over
// the API is the all-local CLI's; with every expert on the front or a shard, no backend runs and it still is.
// Logit-level exactness and shard faults are checked inside workerd (test/worker/shards.test.ts).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeGraniteShaped } from '../../../models/make-granite-shaped';
import { parseManifest, type Manifest } from '../../../src/format/manifest';
import { SHARD_LAYOUT_OBJECT, shardLayoutDocument, shardNames } from '../../../src/shard/layout';
import { startBackend, type BackendProcess } from '../../../tools/dev/backend';
import { startLocalWorkers, type LocalWorkers } from '../../../tools/dev/local-workers';
import { seedLocalR2 } from '../../../tools/seed-local-r2';

const PROMPTS = ['Hello, world', 'def f(x):\n    return'];
const MAX_TOKENS = 10;
let tmp: string;
let modelDir: string;
let manifest: Manifest;
let want: string[];

async function cliGreedy(prompt: string): Promise<string> {
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const { stdout } = await promisify(execFile)(process.execPath, [tsx, 'tools/cli.ts', 'generate', '--model', modelDir, '--prompt', prompt, '--max-tokens', String(MAX_TOKENS), '--temperature', '0', '--json'], { maxBuffer: 1 << 24 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!).text;
}

/** experts e of every layer with e % m in `rs` */
const experts = (m: number, ...rs: number[]) => Array.from({ length: manifest.architecture.numLayers }, () => Array.from({ length: manifest.architecture.numExperts }, (_, e) => e).filter((e) => rs.includes(e % m)));
const layersJson = (rows: number[][]) => JSON.stringify({ layers: Object.fromEntries(rows.map((r, l) => [String(l), r])) });

/** Seeds a fresh local R2 with the model and `layout`, and starts the front + its shards over it. */
async function deploy(name: string, shards: number[][][], vars: Record<string, string>): Promise<LocalWorkers> {
  const doc = shardLayoutDocument(manifest.name, shards.map((layers, i) => ({ ...shardNames('moe-edge', i), layers })));
  const persistTo = join(tmp, name);
  await seedLocalR2({ model: modelDir, persistTo, modelId: manifest.name, extra: [[SHARD_LAYOUT_OBJECT, new TextEncoder().encode(JSON.stringify(doc))]], log: () => {} });
  return startLocalWorkers({ shards: doc.shards, persistTo, vars: { MODEL_ID: manifest.name, ...vars } });
}

async function complete(w: LocalWorkers, prompt: string): Promise<{ text: string; moe: Record<string, unknown>; degraded: string | null }> {
  const res = await fetch(`${w.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: manifest.name, prompt, max_tokens: MAX_TOKENS, temperature: 0 }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { text: string }[]; usage: { moe: Record<string, unknown> } };
  return { text: body.choices[0].text, moe: body.usage.moe, degraded: res.headers.get('x-moe-degraded') };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'moe-edge-tiers-'));
  modelDir = (await makeGraniteShaped({ quant: 'q4_0', layers: 2, outDir: join(tmp, 'model') })).outDir;
  manifest = parseManifest(JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8')));
  want = await Promise.all(PROMPTS.map(cliGreedy));
}, 240_000);
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('front + 2 expert shards + GPU backend, one isolate per Worker', () => {
  let backend: BackendProcess;
  let w: LocalWorkers;
  beforeAll(async () => {
    backend = await startBackend({ token: 'edge-tiers', model: modelDir });
    // front: e % 4 == 0, shard 0: 1, shard 1: 2, backend: 3
    w = await deploy('tiers', [experts(4, 1), experts(4, 2)], {
      HOT_EXPERTS: layersJson(experts(4, 0)), BACKEND_URL: backend.url, BACKEND_TOKEN: backend.token, COLD_POLICY: 'remote', DEGRADED_POLICY: 'error',
    });
  }, 240_000);
  afterAll(async () => Promise.all([w?.stop(), backend?.stop()]));

  it('greedy output is the all-local CLI\'s, with picks on every tier', async () => {
    for (const [i, prompt] of PROMPTS.entries()) {
      const got = await complete(w, prompt);
      expect(got.degraded).toBeNull();
      expect(got.text, prompt).toBe(want[i]);
      expect(got.moe.hot_hits).toBeGreaterThan(0);
      expect(got.moe.shard_hits).toBeGreaterThan(0);
      expect(got.moe.cold_calls).toBeGreaterThan(0);
    }
  });
});

describe('every expert at the edge, no backend', () => {
  let w: LocalWorkers;
  beforeAll(async () => {
    w = await deploy('edge', [experts(2, 0), experts(2, 1)], { HOT_EXPERTS: 'none', BACKEND_URL: '' });
  }, 240_000);
  afterAll(async () => w?.stop());

  it('a generation completes on the shards alone, as the all-local CLI writes it', async () => {
    for (const [i, prompt] of PROMPTS.entries()) {
      const got = await complete(w, prompt);
      expect(got.degraded).toBeNull();
      expect(got.moe).toMatchObject({ hot_hits: 0, cold_calls: 0 });
      expect(got.moe.shard_hits).toBeGreaterThan(0);
      expect(got.text, prompt).toBe(want[i]);
    }
  });
});

// A merged model served by the Worker as `npm start --model <folder>` runs it (local R2 seeded with the folder,
// wrangler.toml's half of every layer hot, the rest on the GPU backend process): greedy completions are the CLI
// engine's, token for token, and the Worker reports the merged model's expert count in its routing statistics.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCalibration, DEFAULTS } from '../../../models/calibration/build';
import { READY_TIMEOUT_MS, startServer, type StartedServer } from '../../helpers/npm-start';
import { sharedPath } from '../../shared-dir';

const run = promisify(execFile);
const tsx = createRequire(import.meta.url).resolve('tsx/cli');
const cli = (...args: string[]) => run(process.execPath, [tsx, 'tools/cli.ts', ...args], { maxBuffer: 64 << 20 });

let dir: string;
let server: StartedServer | undefined;
const merged = () => join(dir, 'merge5');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-edge-merge-worker-'));
  const sets = await buildCalibration({ ...DEFAULTS, out: dir, corpus: sharedPath('corpus'), calibration: 12, heldout: 1 });
  await cli('profile', '--model', 'models/default', '--prompts', sets.calibration, '--out', join(dir, 'stats.json'), '--quiet');
  await cli('merge-experts', '--model', 'models/default', '--stats', join(dir, 'stats.json'), '--keep', '5', '--calibration', sets.calibration, '--sample-tokens', '512', '--out', merged());
  server = await startServer(['--model', merged(), '--device', 'cpu', '--admin-token', 'merge-admin']);
}, READY_TIMEOUT_MS + 240_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the Worker serves a merged model', () => {
  it.each(['ROMEO:\nWhat light', '12 + 30 ='])('greedy completion of %j is the CLI engine\'s', async (prompt) => {
    const res = await fetch(`${server!.base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'default-merge5', prompt, max_tokens: 16, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { text: string }[] };
    const { stdout } = await cli('generate', '--model', merged(), '--prompt', prompt, '--max-tokens', '16', '--json');
    expect(body.choices[0].text.length).toBeGreaterThan(0);
    expect(body.choices[0].text).toBe((JSON.parse(stdout) as { text: string }).text);
  });

  it('its routing statistics have 5 experts per layer', async () => {
    const res = await fetch(`${server!.base}/admin/stats`, { headers: { authorization: 'Bearer merge-admin' } });
    expect(res.status).toBe(200);
    const stats = (await res.json()) as { model: string; numExperts: number; overall: { tokens: number } };
    expect(stats).toMatchObject({ model: 'default-merge5', numExperts: 5 });
    expect(stats.overall.tokens).toBeGreaterThan(0);
  });
});

// Node side of the worker tests: reads models/default for seeding the local R2 (test/worker/seed.ts), runs the
// CLI (`npm run cli -- generate ... --temperature 0 --json`) for the greedy outputs the Worker must reproduce
// exactly, and starts the real GPU backend on loopback (plus a second one that the fault tests kill, a
// fault proxy in front of both, and two replicas that split the experts); their URLs reach the Worker's
// bindings through vitest.config.ts or inject('backend').
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { startBackend, type BackendProcess } from '../../tools/dev/backend';
import { startFaultProxy, type FaultProxy } from '../../tools/dev/fault-proxy';
import { closedPort } from '../../tools/dev/free-port';
import { ADMIN_TOKEN, BACKEND_TOKEN, GREEDY_CASES, type BackendInfo, type GreedyExpectation } from './cases';

const MODEL_DIR = 'models/default';

declare module 'vitest' {
  export interface ProvidedContext {
    /** relative object name -> base64 bytes */
    modelFiles: Record<string, string>;
    greedy: GreedyExpectation[];
    backend: BackendInfo;
  }
}

/** The model's objects: its manifest and everything the manifest lists (not the folder's README etc.). */
async function modelObjects(dir: string): Promise<string[]> {
  let manifest: { objects?: Record<string, unknown> };
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${dir}/manifest.json (${(e as Error).message}): run \`npm run make:tiny-model\``);
  }
  return ['manifest.json', ...Object.keys(manifest.objects ?? {})];
}

async function cliGenerate(root: string, args: string[]): Promise<{ text: string }> {
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const { stdout } = await promisify(execFile)(process.execPath, [tsx, 'tools/cli.ts', 'generate', ...args], { cwd: root, maxBuffer: 1 << 24 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

const root = fileURLToPath(new URL('../..', import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const files: Record<string, string> = {};
  for (const name of await modelObjects(join(root, MODEL_DIR))) {
    files[name] = (await readFile(join(root, MODEL_DIR, name))).toString('base64');
  }
  project.provide('modelFiles', files);

  const greedy: GreedyExpectation[] = await Promise.all(
    GREEDY_CASES.map(async (c) => {
      const flag = c.kind === 'chat' ? '--chat' : '--prompt';
      const out = await cliGenerate(root, ['--model', MODEL_DIR, flag, c.input, '--max-tokens', String(c.maxTokens), '--temperature', '0', '--json']);
      return { ...c, text: out.text };
    }),
  );
  project.provide('greedy', greedy);

  const started: BackendProcess[] = [];
  let proxy: FaultProxy | undefined;
  const teardown = async () => {
    await proxy?.close();
    await Promise.all(started.map((b) => b.stop()));
  };
  try {
    const [main, victim, prefillVictim, low, high] = await Promise.all([
      startBackend({ token: BACKEND_TOKEN }),
      startBackend({ token: BACKEND_TOKEN }),
      startBackend({ token: BACKEND_TOKEN, args: ['--threads', '1'] }), // killed mid-KV-stream by prefill.test.ts
      // expert parallelism (scale-out.test.ts): each replica loads only its half of every layer's experts
      startBackend({ token: BACKEND_TOKEN, args: ['--experts', '0-3', '--threads', '1'] }),
      startBackend({ token: BACKEND_TOKEN, args: ['--experts', '4-7', '--threads', '1'] }),
    ]);
    started.push(main, victim, prefillVictim, low, high);
    // kill-after/<n> goes to a victim (one for expert calls, one for the prefill call), which dies for good; every
    // other mode to the main backend
    const victims = { experts: victim, prefill: prefillVictim };
    proxy = await startFaultProxy({ upstream: (mode, call) => (mode === 'kill-after' ? victims[call].url : main.url), kill: (call) => victims[call].kill() });
    project.provide('backend', { url: main.url, token: BACKEND_TOKEN, proxyUrl: proxy.url, deadUrl: `http://127.0.0.1:${await closedPort()}`, adminToken: ADMIN_TOKEN, replicas: [low.url, high.url] });
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}

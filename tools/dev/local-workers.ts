// Runs the front Worker and its expert-shard Workers together in one local workerd, through `wrangler dev` with one
// config per Worker (its multi-Worker mode: service bindings between them are direct, as in production, and each
// Worker is its own isolate). wrangler's unstable_startWorker runs one Worker only, hence the CLI here. Offline.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { frontConfig, readBaseConfig, shardConfig, type ShardRef } from '../shard-configs';
import { closedPort } from './free-port';
import { keepWranglerOffline } from './offline-env';

export interface LocalWorkersOptions {
  /** the expert shards (binding + Worker name), as in shard-layout.json */
  shards: readonly ShardRef[];
  /** vars (and secrets) of the front, over wrangler.toml's */
  vars?: Record<string, string>;
  /** vars of every shard, over their defaults and what they share with the front (MODEL_PREFIX, MODEL_ID, SHARD_LAYOUT) */
  shardVars?: Record<string, string>;
  /** local state (R2) as `wrangler dev --persist-to`: seed it first (tools/seed-local-r2.ts) */
  persistTo: string;
  hostname?: string;
  /** default: a free port */
  port?: number;
  /** the V8 inspector's port (default: none) */
  inspectorPort?: number;
  /** print wrangler's output (default false: kept for the error message) */
  echo?: boolean;
}

export interface LocalWorkers {
  /** the front's origin */
  readonly url: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const SHARED_VARS = ['MODEL_PREFIX', 'MODEL_ID', 'SHARD_LAYOUT'] as const;

export async function startLocalWorkers(o: LocalWorkersOptions): Promise<LocalWorkers> {
  keepWranglerOffline();
  const base = await readBaseConfig();
  const dir = join(root, '.wrangler', 'local-workers', `${process.pid}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const configs = [join(dir, 'front.json'), ...o.shards.map((_, i) => join(dir, `shard-${i}.json`))];
  await writeFile(configs[0], JSON.stringify(frontConfig(base, o.shards, o.vars), null, 2));
  // a shard reads the very model and layout the front does
  const shared = Object.fromEntries(SHARED_VARS.flatMap((k) => (o.vars?.[k] ? [[k, o.vars[k]]] : [])));
  await Promise.all(o.shards.map((s, i) => writeFile(configs[i + 1], JSON.stringify(shardConfig(base, s, { ...shared, ...o.shardVars }), null, 2))));

  const hostname = o.hostname ?? '127.0.0.1';
  const port = o.port ?? (await closedPort());
  // the package's bin (its exports do not list it): beside its package.json
  const wrangler = join(dirname(createRequire(import.meta.url).resolve('wrangler/package.json')), 'bin', 'wrangler.js');
  const args = [wrangler, 'dev', ...configs.flatMap((c) => ['-c', c]), '--ip', hostname, '--port', String(port), '--persist-to', o.persistTo, '--log-level', 'warn', '--show-interactive-dev-session=false'];
  if (o.inspectorPort !== undefined) args.push('--inspector-port', String(o.inspectorPort));
  const child = spawn(process.execPath, args, { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const onData = (b: Buffer) => {
    output += b.toString();
    if (output.length > 64_000) output = output.slice(-32_000);
    if (o.echo) process.stdout.write(b);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const url = `http://${hostname}:${port}`;
  try {
    await waitReady(url, child, () => output);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, process: child, stop };
}

/** Until the front answers anything over HTTP (wrangler prints "Ready" before workerd listens on every platform). */
async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited (${child.exitCode}):\n${output().slice(-4000)}`);
    try {
      await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw new Error(`wrangler dev did not answer on ${url} within ${timeoutMs} ms:\n${output().slice(-4000)}`);
}

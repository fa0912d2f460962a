// The server exactly as `npm start` runs it (tools/start.ts: seed local R2, the GPU backend, the Worker in workerd),
// on a free loopback port with its own local R2 folder, for tests that drive it over HTTP. It runs in its own
// process group so that stop() ends start.ts, the backend and workerd together.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from '../../tools/dev/free-port';
import { WRANGLER_OFFLINE_ENV } from '../../tools/dev/offline-env';

export const READY_TIMEOUT_MS = 120_000;

export interface StartedServer {
  base: string;
  /** everything the server printed so far */
  output(): string;
  stop(): Promise<void>;
}

/** Starts the server and waits until /healthz says the model is loaded (a 503 there fails at once). */
export async function startServer(extraArgs: string[] = []): Promise<StartedServer> {
  const port = await closedPort(); // free now; start.ts binds it
  const base = `http://127.0.0.1:${port}`;
  const persistDir = await mkdtemp(join(tmpdir(), 'moe-edge-server-'));
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  let output = '';
  // the kernels are built by `npm test` before vitest starts, hence --skip-build
  const server: ChildProcess = spawn(process.execPath, [tsx, 'tools/start.ts', '--port', String(port), '--persist-to', persistDir, '--skip-build', ...extraArgs], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...WRANGLER_OFFLINE_ENV },
  });
  server.stdout!.on('data', (d) => (output += d));
  server.stderr!.on('data', (d) => (output += d));
  const stop = async () => {
    if (server.pid && server.exitCode == null) {
      const exited = new Promise((r) => server.once('exit', r));
      process.kill(-server.pid, 'SIGTERM');
      const timer = setTimeout(() => server.pid && process.kill(-server.pid, 'SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(persistDir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (server.exitCode != null) throw new Error(`server exited with ${server.exitCode}:\n${output}`);
      const res = await fetch(`${base}/healthz`).catch(() => null);
      if (res?.status === 200) break;
      if (res?.status === 503) throw new Error(`model does not load: ${await res.text()}`);
      if (Date.now() > deadline) throw new Error(`server not ready after ${READY_TIMEOUT_MS} ms:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, output: () => output, stop };
}

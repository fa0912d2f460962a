// Starts the real GPU backend (gpu-backend/main.ts) as a child process for tests and benchmarks, with tsx
// loaded into that very process (`node --import tsx`), so its pid is the server itself and a test can
// SIGKILL it mid-generation. Resolves once it prints its listening line.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface BackendProcess {
  readonly url: string;
  readonly token: string;
  readonly pid: number;
  /** stderr so far */
  log(): string;
  /** SIGKILL: the process dies at once, as a crashed backend would. */
  kill(): void;
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BackendProcessOptions {
  token: string;
  /** model folder (default models/default) */
  model?: string;
  /** more flags, e.g. ['--threads', '1'] */
  args?: string[];
  timeoutMs?: number;
}

export function startBackendProcess(opts: BackendProcessOptions): Promise<BackendProcess> {
  const args = ['--import', 'tsx', 'gpu-backend/main.ts', '--model', opts.model ?? 'models/default', '--device', 'cpu', '--port', '0', ...(opts.args ?? [])];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, BACKEND_TOKEN: opts.token }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gpu-backend did not start within ${opts.timeoutMs ?? 60_000} ms:\n${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`gpu-backend exited (${code ?? signal}) before listening:\n${stderr}`));
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /gpu-backend listening on (\S+)/.exec(stdout);
      if (!m) return;
      clearTimeout(timer);
      resolve({
        url: m[1]!,
        token: opts.token,
        pid: child.pid!,
        log: () => stderr,
        kill: () => void (alive() && child.kill('SIGKILL')),
        stop: async () => {
          if (alive()) child.kill('SIGTERM');
          const t = setTimeout(() => alive() && child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        },
      });
    });
  });
}

/** A loopback port that nothing listens on (taken, then released): a backend that is down from the start. */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

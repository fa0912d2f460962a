// Starts the backend as a child process and waits until it listens: for tests, benchmarks and `npm start`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface SpawnedBackend {
  readonly url: string; // http://host:port
  readonly token: string | null;
  readonly process: ChildProcess;
  /** stderr so far (load log, errors) */
  readonly log: () => string;
  stop(): Promise<void>;
}

export interface SpawnBackendOptions {
  /** CLI flags after `gpu-backend/main.ts`, e.g. ['--device', 'cpu', '--experts', '0-3']; --port defaults to 0 */
  args?: string[];
  /** BACKEND_TOKEN; null: --insecure-no-token */
  token?: string | null;
  env?: NodeJS.ProcessEnv;
  /** give up waiting for the listening line after this long (default 60 s) */
  timeoutMs?: number;
}

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export function spawnBackend(opts: SpawnBackendOptions = {}): Promise<SpawnedBackend> {
  const token = opts.token === undefined ? 'test-token' : opts.token;
  const args = [...(opts.args ?? [])];
  if (!args.includes('--port')) args.push('--port', '0');
  if (token === null) args.push('--insecure-no-token');
  // the running Node (22 under npm/npx) with tsx's CLI: no npx start-up cost per spawn
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const child = spawn(process.execPath, [tsx, 'gpu-backend/main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env, BACKEND_TOKEN: token ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => { void stop(); reject(new Error(`gpu-backend did not start within ${opts.timeoutMs ?? 60000} ms:\n${stderr}`)); }, opts.timeoutMs ?? 60_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const m = /gpu-backend listening on (\S+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], token, process: child, log: () => stderr, stop });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`gpu-backend exited (${code ?? signal}) before listening:\n${stderr}`));
    });
  });
}

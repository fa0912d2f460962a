// Starts the GPU backend (gpu-backend/main.ts) as a child process and resolves once it prints its listening
// line: the one starter for tests, benchmarks and `npm start`. tsx is loaded into that very process
// (`node --import tsx`), so its pid is the server itself: RSS reads and a SIGKILL mid-generation hit the backend.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export interface BackendOptions {
  /** BACKEND_TOKEN (default: a fresh random one); '' sets none, so the backend refuses to start; null: --insecure-no-token */
  token?: string | null;
  /** --model: a folder or r2:<path> (default models/default) */
  model?: string;
  /** --device auto|webgpu|cpu (default cpu) */
  device?: string;
  /** --port (default 0: any free port, read back from the listening line) */
  port?: number | string;
  /** more flags, e.g. ['--threads', '1', '--experts', '0-3'] */
  args?: string[];
  /** more environment, e.g. R2_* for --model r2:<path> */
  env?: NodeJS.ProcessEnv;
  /** give up waiting for the listening line after this long (default 60 s) */
  timeoutMs?: number;
  /** also copy its stdout and stderr to this process's (npm start) */
  echo?: boolean;
}

export interface BackendProcess {
  /** http://host:port */
  readonly url: string;
  /** the token clients send ('' under --insecure-no-token) */
  readonly token: string;
  readonly pid: number;
  /** the child itself: its stdout stream (utf8) and exit events */
  readonly process: ChildProcess;
  /** stderr so far (load log, errors) */
  log(): string;
  /** SIGKILL: the process dies at once, as a crashed backend would */
  kill(): void;
  /** SIGTERM, then SIGKILL if it is still up after 5 s; resolves once it has exited */
  stop(): Promise<void>;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function startBackend(opts: BackendOptions = {}): Promise<BackendProcess> {
  const token = opts.token === undefined ? randomBytes(18).toString('base64url') : opts.token;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const args = ['--import', 'tsx', 'gpu-backend/main.ts', '--model', opts.model ?? 'models/default', '--device', opts.device ?? 'cpu', '--port', String(opts.port ?? 0)];
  if (token === null) args.push('--insecure-no-token');
  args.push(...(opts.args ?? []));
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...opts.env, BACKEND_TOKEN: token ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout: string | null = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (opts.echo) process.stderr.write(d);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async () => {
    if (alive()) child.kill('SIGTERM');
    const t = setTimeout(() => alive() && child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      if (alive()) child.kill('SIGKILL');
      reject(new Error(`gpu-backend did not start within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`gpu-backend exited (${code ?? signal}) before listening:\n${stderr}`));
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (opts.echo) process.stdout.write(d);
      if (stdout === null) return; // listening already
      stdout += d;
      const m = /gpu-backend listening on (\S+)/.exec(stdout);
      if (!m) return;
      stdout = null;
      clearTimeout(timer);
      resolve({
        url: m[1]!,
        token: token ?? '',
        pid: child.pid!,
        process: child,
        log: () => stderr,
        kill: () => void (alive() && child.kill('SIGKILL')),
        stop,
      });
    });
  });
}

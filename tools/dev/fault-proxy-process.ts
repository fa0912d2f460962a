// The fault proxy (fault-proxy.ts) in a child process of its own, for benchmarks: its delays and pacing then run on
// another event loop than the one being measured. Resolves once it prints its listening line.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface FaultProxyProcess {
  /** http://127.0.0.1:<port>; append a mode, e.g. `${url}/delay/20` */
  readonly url: string;
  readonly process: ChildProcess;
  stop(): void;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function spawnFaultProxy(upstream: string): Promise<FaultProxyProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'tools/dev/fault-proxy.ts', '--upstream', upstream], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /fault-proxy listening on (\S+)/.exec(out);
      if (m) resolve({ url: m[1]!, process: proc, stop: () => proc.kill('SIGTERM') });
    });
    proc.once('exit', (c) => reject(new Error(`fault proxy exited (${c})`)));
  });
}

// The workerd processes this Node process started (through wrangler), found by walking /proc's parent links, and
// their resident memory: the cross-check of what an isolate reports about itself. Linux only.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface WorkerdProcess {
  readonly pid: number;
  /** started with --inspector-addr: it runs the user Worker (wrangler's proxy Worker runs in another, without it) */
  readonly inspector: boolean;
}

/** The workerd processes descended from `root` (default this process). */
export function workerdProcesses(root: number = process.pid): WorkerdProcess[] {
  const parentOf = new Map<number, number>();
  const workerd: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      parentOf.set(Number(d), Number(stat.slice(close + 2).split(' ')[1]));
      if (stat.slice(stat.indexOf('(') + 1, close).startsWith('workerd')) workerd.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  const descends = (pid: number) => {
    for (let p = parentOf.get(pid); p !== undefined && p > 0; p = parentOf.get(p)) if (p === root) return true;
    return false;
  };
  return workerd.filter(descends).flatMap((pid) => {
    try {
      return [{ pid, inspector: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.startsWith('--inspector-addr')) }];
    } catch {
      return [];
    }
  });
}

/**
 * The pid of the workerd that hosts the user Worker started with its inspector on (startLocalWorker({ inspector:
 * true })): wrangler starts it a moment after the Worker reports ready, so this waits up to `timeoutMs`.
 */
export async function inspectedWorkerdPid(timeoutMs = 10_000, root: number = process.pid): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = workerdProcesses(root).filter((p) => p.inspector);
    if (found.length === 1) return found[0].pid;
    if (found.length > 1) throw new Error(`${found.length} workerd processes with an inspector under pid ${root}: ${found.map((p) => p.pid).join(', ')}`);
    if (Date.now() > until) throw new Error(`no workerd process with an inspector under pid ${root} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The --inspector-addr a workerd process was started with (host:port; the port may be 0, "any free one":
 * miniflare asks for that when wrangler proxies the inspector).
 */
export function workerdInspectorArg(pid: number): string {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const i = args.findIndex((a) => a.startsWith('--inspector-addr'));
  const addr = i < 0 ? undefined : args[i].includes('=') ? args[i].slice(args[i].indexOf('=') + 1) : args[i + 1];
  if (!addr) throw new Error(`workerd ${pid} was started without --inspector-addr`);
  return addr;
}

/** The TCP ports a process listens on over IPv4 (its socket inodes matched against /proc/net/tcp). */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const LISTEN = '0A';
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 9 && f[3] === LISTEN && inodes.has(f[9]))
    .map((f) => parseInt(f[1].split(':')[1], 16));
}

/** VmRSS and VmHWM (its peak) of a process, in bytes. */
export function residentBytes(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

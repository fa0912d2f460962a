// The workerd processes this Node process started (through wrangler), found by walking /proc's parent links, and
// their resident memory: the cross-check of what an isolate reports about itself. Linux only.
import { readdirSync, readFileSync } from 'node:fs';

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

/** VmRSS and VmHWM (its peak) of a process, in bytes. */
export function residentBytes(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

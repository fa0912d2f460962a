// The parent side of llama-child.ts: one llama.cpp child per bench:shapes model, started with this process's
// execArgv (tsx's loader), requests matched by id; when the child dies every pending request fails with its exit
// signal, and the next open() starts a fresh child.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RoundResult } from '../e2e/engine-round';
import type { openLlama } from '../peers/llama';
import type { LlamaRequest } from './llama-child';

const CHILD = fileURLToPath(new URL('./llama-child.ts', import.meta.url));

type Body<T> = T extends unknown ? Omit<T, 'id'> : never;

export class LlamaProcess {
  private child: ChildProcess | null = null;
  private next = 0;
  private readonly pending = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void }>();

  private start(): ChildProcess {
    const child = fork(CHILD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.ok(m.result);
      else p?.fail(new Error(m.error));
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = null;
      for (const p of this.pending.values()) p.fail(new Error(`llama.cpp's process ended (${signal ?? `exit code ${code}`})`));
      this.pending.clear();
    });
    return child;
  }

  private call<T>(req: Body<LlamaRequest>): Promise<T> {
    const child = (this.child ??= this.start());
    const id = this.next++;
    return new Promise<T>((ok, fail) => {
      this.pending.set(id, { ok: ok as (v: unknown) => void, fail });
      child.send({ ...req, id });
    });
  }

  open(gguf: string, opts: Parameters<typeof openLlama>[1]): Promise<void> {
    return this.call({ op: 'open', gguf, opts });
  }

  round(prompt: number[], decode: number): Promise<RoundResult> {
    return this.call({ op: 'round', prompt, decode });
  }

  async dispose(): Promise<void> {
    const child = this.child;
    if (!child) return;
    await this.call({ op: 'dispose' }).catch(() => {});
    child.disconnect();
    await new Promise((ok) => (child.exitCode !== null || child.signalCode !== null ? ok(null) : child.once('exit', ok)));
  }
}

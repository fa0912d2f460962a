// The cpu device: the very WASM kernel module the Worker runs, one instance per worker thread. Experts are
// partitioned across threads (each weight lives once), so one batch's groups run on several threads at once.
// Groups' rows move to the threads as they came (q8_0 blocks or f32), without a copy when they own their buffers.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import type { WasmVariant } from '../../src/kernels/wasm';
import type { Activations } from '../../src/protocol/activations';
import type { CpuWorkerReply, CpuWorkerRequest } from './cpu-messages';
import type { ExpertDevice, ExpertEntries, ExpertGroup } from './device';

export interface CpuDeviceOptions {
  /** Worker threads; default min(8, cores). */
  threads?: number;
  /** Kernel build; default relaxed-SIMD where the runtime has it, else SIMD (what loadNodeKernels picks). */
  variant?: WasmVariant;
}

interface Thread {
  worker: Worker;
  bytes: number;
  pending: Map<number, { resolve: (r: CpuWorkerReply) => void; reject: (e: Error) => void }>;
}

export async function createCpuDevice(opts: CpuDeviceOptions = {}): Promise<ExpertDevice> {
  const modules = await loadNodeKernelModules();
  const variant = opts.variant ?? (modules.relaxed ? 'relaxed' : 'simd');
  const module = variant === 'relaxed' ? modules.relaxed : modules.simd;
  if (!module) throw new Error('cpu device: this runtime does not support relaxed-SIMD');
  const n = Math.max(1, opts.threads ?? Math.min(8, availableParallelism()));
  const threads: Thread[] = [];
  for (let i = 0; i < n; i++) threads.push(startThread(module, variant));
  const home = new Map<string, Thread>(); // "layer/expert" -> the thread holding its weights
  let nextId = 1;
  let closed = false;

  const call = (t: Thread, msg: CpuWorkerRequest, transfer: ArrayBuffer[] = []): Promise<CpuWorkerReply> =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new Error('cpu device is closed'));
      t.pending.set(msg.id, { resolve, reject });
      t.worker.postMessage(msg, transfer);
    });

  return {
    name: 'cpu',
    get residentBytes() {
      return threads.reduce((s, t) => s + t.bytes, 0);
    },
    async loadExpert(layer: number, expert: number, entries: ExpertEntries, bytes: Uint8Array): Promise<void> {
      const key = `${layer}/${expert}`;
      if (home.has(key)) throw new Error(`cpu device: expert ${key} is already loaded`);
      // the thread with the fewest bytes: balances memory, and spreads a layer's experts over all threads
      // (loads overlap, so the object size is booked at once and corrected when the thread reports)
      const t = threads.reduce((a, b) => (b.bytes < a.bytes ? b : a));
      home.set(key, t);
      const booked = bytes.byteLength;
      t.bytes += booked;
      const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
      const r = await call(t, { type: 'load', id: nextId++, layer, expert, entries, bytes: owned }, [owned.buffer as ArrayBuffer]);
      t.bytes -= booked;
      if (!r.ok) { home.delete(key); throw new Error(r.error); }
      if ('bytes' in r) t.bytes += r.bytes;
    },
    async run(layer: number, groups: readonly ExpertGroup[]): Promise<Float32Array[]> {
      const byThread = new Map<Thread, number[]>(); // thread -> indices into groups
      groups.forEach((g, i) => {
        const t = home.get(`${layer}/${g.expert}`);
        if (!t) throw new Error(`cpu device: expert ${layer}/${g.expert} is not loaded`);
        const list = byThread.get(t) ?? [];
        list.push(i);
        byThread.set(t, list);
      });
      const out: Float32Array[] = new Array(groups.length);
      await Promise.all([...byThread].map(async ([t, idx]) => {
        const transfer: ArrayBuffer[] = [];
        // arrays that own their whole buffer move to the thread; any other is copied first
        const own = <T extends TypedArray>(a: T): T => {
          const whole = a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && !transfer.includes(a.buffer as ArrayBuffer);
          const b = whole ? a : (a.slice() as T);
          transfer.push(b.buffer as ArrayBuffer);
          return b;
        };
        const sent = idx.map((i): ExpertGroup => ({ ...groups[i], x: mapArrays(groups[i].x, own) }));
        const r = await call(t, { type: 'run', id: nextId++, layer, groups: sent }, transfer);
        if (!r.ok) throw new Error(r.error);
        if (!('ys' in r)) throw new Error('cpu device: a worker answered a run with no results');
        idx.forEach((i, j) => { out[i] = r.ys[j]; });
      }));
      return out;
    },
    async close(): Promise<void> {
      closed = true;
      await Promise.all(threads.map((t) => t.worker.terminate()));
    },
  };
}

type TypedArray = Float32Array | Uint16Array | Int8Array;

/** x with each of its arrays replaced by f(array). */
function mapArrays(x: Activations, f: <T extends TypedArray>(a: T) => T): Activations {
  switch (x.dtype) {
    case 'f32': return { dtype: 'f32', data: f(x.data) };
    case 'f16': return { dtype: 'f16', data: f(x.data) };
    case 'q8_0': return { dtype: 'q8_0', qs: f(x.qs), d: f(x.d) };
  }
}

function startThread(module: WebAssembly.Module, variant: WasmVariant): Thread {
  const file = new URL(`./cpu-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);
  const worker = new Worker(file, { workerData: { module, variant }, execArgv: workerExecArgv(file) });
  const t: Thread = { worker, bytes: 0, pending: new Map() };
  worker.on('message', (r: CpuWorkerReply) => {
    const p = t.pending.get(r.id);
    t.pending.delete(r.id);
    p?.resolve(r);
  });
  const failAll = (e: Error) => {
    for (const p of t.pending.values()) p.reject(e);
    t.pending.clear();
  };
  worker.on('error', (e) => failAll(new Error(`cpu device: a worker thread failed: ${e.message}`)));
  worker.on('exit', (code) => failAll(new Error(`cpu device: a worker thread exited (${code})`)));
  return t;
}

// A .ts worker needs the tsx loader: inherited when the process runs under tsx, added when it does not (vitest).
function workerExecArgv(file: URL): string[] {
  const inherited = process.execArgv;
  if (!file.pathname.endsWith('.ts') || inherited.some((a) => a.includes('tsx'))) return inherited;
  const loader = createRequire(import.meta.url).resolve('tsx');
  return [...inherited, '--import', pathToFileURL(loader).href];
}

// Samples one Worker isolate's memory from outside, as issue 13 measures it: the JS heap from the V8 inspector
// (Runtime.getHeapUsage, which leaves WASM memory out), the WASM memory the Worker reports in /metrics
// (moe_wasm_memory_bytes), and the RSS of the workerd process that hosts it as a cross-check. One sampler per
// isolate: the front Worker now, a shard Worker the same way (its inspector target, its /metrics, its process).
import { createRequire } from 'node:module';
import type { LocalWorker } from './local-worker';
import { inspectedWorkerdPid, listeningPorts, residentBytes, workerdInspectorArg } from './workerd-process';

// `ws` (reached through wrangler/miniflare) rather than Node's WebSocket: the inspector proxy refuses a socket
// without a devtools Origin, and Node's WebSocket cannot set one. Untyped here (no @types/ws), hence the shape below.
interface InspectorSocket {
  on(event: 'open' | 'close', cb: () => void): void;
  on(event: 'message', cb: (data: Buffer) => void): void;
  on(event: 'error', cb: (e: Error) => void): void;
  send(text: string): void;
  close(): void;
}
const WebSocketClient = createRequire(import.meta.url)('ws') as new (url: string, opts: { headers: Record<string, string> }) => InspectorSocket;
const DEVTOOLS_ORIGIN = 'https://devtools.devprod.cloudflare.dev';

/** A node of HeapProfiler's sampling profile: allocations of one call stack. */
interface AllocationNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: AllocationNode[];
}

/** One entry of the inspector's /json list. */
export interface InspectorTarget {
  readonly id: string;
  readonly title: string;
  readonly webSocketDebuggerUrl: string;
}

export interface IsolateProbe {
  /** the inspector's origin, e.g. http://127.0.0.1:9229 (LocalWorker.inspectorUrl) */
  readonly inspectorUrl: string;
  /** which /json target is the isolate (default: the only one) */
  readonly pick?: (t: InspectorTarget) => boolean;
  /** GET /metrics of the same isolate */
  readonly metricsUrl: string;
  /** the model whose WASM gauges count (MODEL_ID) */
  readonly model: string;
  /** the workerd process that hosts the isolate (tools/dev/workerd-process.ts) */
  readonly pid: number;
}

export interface IsolateSample {
  /** ms since the sampler connected */
  readonly atMs: number;
  /** Runtime.getHeapUsage: V8 heap in use and allocated, ArrayBuffer backing stores (WASM memory not included), embedder */
  readonly jsUsedBytes: number;
  readonly jsTotalBytes: number;
  readonly jsBackingStoreBytes: number;
  readonly jsEmbedderBytes: number;
  /** /metrics: moe_wasm_memory_bytes and moe_wasm_heap_used_bytes of the model */
  readonly wasmMemoryBytes: number;
  readonly wasmHeapUsedBytes: number;
  /** VmRSS of the hosting workerd process */
  readonly rssBytes: number;
}

/** What the isolate holds: JS heap in use + ArrayBuffer backing stores + WASM memory. */
export function isolateBytes(s: IsolateSample): number {
  return s.jsUsedBytes + s.jsBackingStoreBytes + s.wasmMemoryBytes;
}

/** A Prometheus gauge's value with one model label (NaN when absent). */
export function gaugeOf(text: string, name: string, model: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{model="${model}"} `));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

// Longest wait for one inspector answer but a heap snapshot's (heapSnapshot takes its own): the others come in
// milliseconds; within the process tests' 60 s timeout, so a lost answer fails with its method's name.
const CALL_TIMEOUT_MS = 30_000;

export class IsolateMemory {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly t0 = performance.now();
  private snapshotChunks: string[] | null = null;

  private constructor(
    private readonly socket: InspectorSocket,
    private readonly probe: IsolateProbe,
  ) {
    socket.on('message', (data) => {
      const msg = JSON.parse(data.toString('utf8')) as { id?: number; method?: string; params?: { chunk?: string }; result?: unknown; error?: { message: string } };
      if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') this.snapshotChunks?.push(msg.params?.chunk ?? '');
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!p) return; // another event
      this.pending.delete(msg.id!);
      if (msg.error) p.reject(new Error(`inspector: ${msg.error.message}`));
      else p.resolve(msg.result);
    });
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error('inspector: the socket closed'));
      this.pending.clear();
    });
  }

  /**
   * Finds the isolate's target in the inspector's /json list and opens its socket. `direct`: workerd's own
   * inspector (the --inspector-addr of probe.pid) rather than wrangler's proxy, which stalls on the long
   * answers of HeapProfiler (a snapshot, a forced collection).
   */
  static async connect(probe: IsolateProbe, opts: { direct?: boolean } = {}): Promise<IsolateMemory> {
    const origin = opts.direct ? await workerdInspectorOrigin(probe.pid) : probe.inspectorUrl;
    const targets = (await (await fetch(`${origin}/json`)).json()) as InspectorTarget[];
    // workerd itself lists every service (R2, caches, miniflare's own): its user Workers are the core:user: ones
    const userWorker = (t: InspectorTarget) => / core:user:/.test(t.title) && !/ core:user:miniflare-/.test(t.title);
    const matching = targets.filter(probe.pick ?? (opts.direct ? userWorker : () => true));
    if (matching.length !== 1) throw new Error(`inspector ${origin}: ${matching.length} matching targets (${targets.map((t) => t.title).join(', ')})`);
    const open = async () => {
      const socket = new WebSocketClient(matching[0].webSocketDebuggerUrl, { headers: { Origin: DEVTOOLS_ORIGIN } });
      await new Promise<void>((resolve, reject) => {
        socket.on('open', resolve);
        socket.on('error', reject);
      });
      return new IsolateMemory(socket, probe);
    };
    if (!opts.direct) return open();
    // workerd serves one session per isolate: the first direct socket can be closed while wrangler's proxy takes its
    // session back (measured: the second one then stays; on a loaded machine the close came after a first answer),
    // so a socket counts once it has answered twice, 250 ms apart
    for (let attempt = 1; ; attempt++) {
      const mem = await open();
      try {
        await mem.call('Runtime.getHeapUsage');
        await new Promise((r) => setTimeout(r, 250));
        await mem.call('Runtime.getHeapUsage');
        return mem;
      } catch (e) {
        mem.close();
        if (attempt === 5) throw e;
      }
    }
  }

  /**
   * One inspector command. An answer that never comes (seen once in CI: a heap snapshot over workerd's direct session,
   * the test then hung until vitest's timeout said nothing of why) rejects after CALL_TIMEOUT_MS with the method's name.
   */
  private call<T>(method: string, params: object = {}, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`inspector ${method}: no answer in ${timeoutMs / 1000} s (the session may have been taken over: wrangler's proxy and a direct socket share one)`));
      }, timeoutMs);
      const settle = <V>(f: (v: V) => void) => (v: V) => { clearTimeout(timer); f(v); };
      this.pending.set(id, { resolve: settle(resolve as (v: unknown) => void), reject: settle(reject) });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** One sample: the inspector and /metrics are asked at once; the isolate answers both between its tasks. */
  async sample(): Promise<IsolateSample> {
    const [heap, text] = await Promise.all([
      this.call<{ usedSize: number; totalSize: number; backingStorageSize?: number; embedderHeapUsedSize?: number }>('Runtime.getHeapUsage'),
      fetch(this.probe.metricsUrl).then((r) => {
        if (!r.ok) throw new Error(`GET ${this.probe.metricsUrl}: ${r.status}`);
        return r.text();
      }),
    ]);
    const wasmMemoryBytes = gaugeOf(text, 'moe_wasm_memory_bytes', this.probe.model);
    if (Number.isNaN(wasmMemoryBytes)) throw new Error(`${this.probe.metricsUrl} has no moe_wasm_memory_bytes for model ${this.probe.model}`);
    return {
      atMs: performance.now() - this.t0,
      jsUsedBytes: heap.usedSize,
      jsTotalBytes: heap.totalSize,
      jsBackingStoreBytes: heap.backingStorageSize ?? 0,
      jsEmbedderBytes: heap.embedderHeapUsedSize ?? 0,
      wasmMemoryBytes,
      wasmHeapUsedBytes: gaugeOf(text, 'moe_wasm_heap_used_bytes', this.probe.model),
      rssBytes: residentBytes(this.probe.pid).rss,
    };
  }

  /**
   * A heap snapshot (HeapProfiler.takeHeapSnapshot: V8 collects garbage first, so it holds live objects only), as
   * the .heapsnapshot JSON text DevTools reads. heap-summary.ts summarizes it. timeoutMs: how long its answer may take
   * (10 min unless told: the time grows with the heap).
   */
  async heapSnapshot(timeoutMs = 600_000): Promise<string> {
    if (this.snapshotChunks) throw new Error('a heap snapshot is already being taken');
    this.snapshotChunks = [];
    try {
      await this.call('HeapProfiler.takeHeapSnapshot', { reportProgress: false }, timeoutMs);
      return this.snapshotChunks.join('');
    } finally {
      this.snapshotChunks = null;
    }
  }

  /**
   * V8's sampling heap profiler over `work`: bytes allocated meanwhile by allocating function (about one sample per
   * `intervalBytes`), garbage included (objects collected by minor and major GCs count too): where garbage comes from.
   */
  async allocationsDuring<T>(work: () => Promise<T>, intervalBytes = 16384): Promise<{ result: T; byFunction: { fn: string; bytes: number }[] }> {
    await this.call('HeapProfiler.startSampling', { samplingInterval: intervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    let result: T;
    try {
      result = await work();
    } catch (e) {
      await this.call('HeapProfiler.stopSampling').catch(() => {});
      throw e;
    }
    const { profile } = await this.call<{ profile: { head: AllocationNode } }>('HeapProfiler.stopSampling');
    const totals = new Map<string, number>();
    const walk = (n: AllocationNode) => {
      const f = n.callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').at(-1) ?? ''}:${f.lineNumber + 1}`;
      if (n.selfSize > 0) totals.set(key, (totals.get(key) ?? 0) + n.selfSize);
      n.children.forEach(walk);
    };
    walk(profile.head);
    return { result, byFunction: [...totals.entries()].map(([fn, bytes]) => ({ fn, bytes })).sort((a, b) => b.bytes - a.bytes) };
  }

  /** HeapProfiler.collectGarbage: a full collection, so that the next sample counts live objects only. */
  async collectGarbage(): Promise<void> {
    await this.call('HeapProfiler.collectGarbage');
  }

  /**
   * Samples back to back, one every `everyMs` at most (a sample waits while the isolate computes), until the
   * returned stop() is called; stop() resolves with every sample taken. A failed sample is skipped and counted.
   */
  every(everyMs: number): { stop(): Promise<{ samples: IsolateSample[]; failed: number }> } {
    const samples: IsolateSample[] = [];
    let failed = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        const start = performance.now();
        try {
          samples.push(await this.sample());
        } catch {
          failed++;
        }
        const wait = everyMs - (performance.now() - start);
        if (wait > 0 && running) await new Promise((r) => setTimeout(r, wait));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return { samples, failed };
      },
    };
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * The origin of workerd's own inspector: its --inspector-addr, or, when that asked for any free port, whichever
 * of the process's listening ports answers the inspector's /json list.
 */
async function workerdInspectorOrigin(pid: number): Promise<string> {
  const arg = workerdInspectorArg(pid);
  const port = Number(arg.slice(arg.lastIndexOf(':') + 1));
  const candidates = port > 0 ? [port] : listeningPorts(pid);
  for (const p of candidates) {
    try {
      const r = await fetch(`http://127.0.0.1:${p}/json`, { signal: AbortSignal.timeout(2000) });
      if (r.ok && Array.isArray(await r.json())) return `http://127.0.0.1:${p}`;
    } catch {
      // not the inspector
    }
  }
  throw new Error(`workerd ${pid}: none of its ports (${candidates.join(', ')}) serves the inspector's /json`);
}

/** The probe of a Worker started by startLocalWorker({ inspector: true }): its inspector, its /metrics, its workerd. */
export async function probeOf(worker: LocalWorker, model: string): Promise<IsolateProbe> {
  if (!worker.inspectorUrl) throw new Error('the Worker was started without its inspector (startLocalWorker({ inspector: true }))');
  return { inspectorUrl: worker.inspectorUrl, metricsUrl: `${worker.url}/metrics`, model, pid: await inspectedWorkerdPid() };
}

// Turns the two compiled kernel modules into the benchmark's executors (wasm-scalar/simd/relaxed) and its
// streaming reader; shared by Node and workerd, which differ only in how they obtain the modules.
import type { Kernels } from '../../src/kernels/types';
import { createWasmKernels, instantiateKernels } from '../../src/kernels/wasm';
import { measureCase, prepareStream, type CaseResult, type CaseSpec, type Clock, type Executor, type MeasureOptions, type StreamReader } from './measure';

export interface KernelModules {
  simd: WebAssembly.Module; // kernels-simd.wasm: SIMD kernels, their scalar twins, stream_read
  relaxed: WebAssembly.Module | null; // kernels-relaxed.wasm, null where the runtime rejects relaxed SIMD
}

// 1 GiB: room for a 64 MiB weight pool per case or the 256 MiB streaming buffer, below any 4 GiB reservation.
const MAX_PAGES = 16384;

export function availableExecutors(m: KernelModules): Executor[] {
  return m.relaxed ? ['wasm-scalar', 'wasm-simd', 'wasm-relaxed', 'wasm-relaxed-fused'] : ['wasm-scalar', 'wasm-simd'];
}

export function makeKernels(m: KernelModules, executor: Executor): Kernels {
  if (executor === 'wasm-relaxed' || executor === 'wasm-relaxed-fused') {
    if (!m.relaxed) throw new Error(`${executor}: this runtime does not validate relaxed SIMD`);
    // both integer-dot paths, whichever the engine would pick: the one it does not pick shows what the probe saves
    return createWasmKernels(m.relaxed, 'relaxed', { maximumPages: MAX_PAGES, fusedDot: executor === 'wasm-relaxed-fused' });
  }
  return createWasmKernels(m.simd, executor === 'wasm-simd' ? 'simd' : 'scalar', { maximumPages: MAX_PAGES });
}

/** The yardstick: the simd module's `stream_read` (4 x v128 loads per 64 bytes, summed), in its own memory. */
export function makeStreamReader(m: KernelModules): StreamReader {
  const { ex, heap } = instantiateKernels(m.simd, { maximumPages: MAX_PAGES });
  return { heap, read: ex.stream_read };
}

/** A per-isolate/process cache: one executor instance per kind (each owns its memory), one stream buffer. */
export class BenchContext {
  private readonly kernels = new Map<Executor, Kernels>();
  private stream: { reader: StreamReader; ptr: number; bytes: number } | null = null;

  constructor(readonly modules: KernelModules) {}

  executor(e: Executor): Kernels {
    let k = this.kernels.get(e);
    if (!k) this.kernels.set(e, (k = makeKernels(this.modules, e)));
    return k;
  }

  private streamBuffer(bytes: number): { reader: StreamReader; ptr: number } {
    if (!this.stream || this.stream.bytes !== bytes) {
      if (this.stream) this.stream.reader.heap.release(this.stream.ptr);
      const reader = this.stream?.reader ?? makeStreamReader(this.modules);
      this.stream = { reader, ptr: prepareStream(reader, bytes), bytes };
    }
    return this.stream;
  }

  measure(spec: CaseSpec, opts: MeasureOptions, now: Clock): CaseResult {
    const { reader, ptr } = this.streamBuffer(opts.streamBytes);
    return measureCase(spec, this.executor(spec.executor), reader, ptr, opts, now);
  }
}

// The streaming-read yardstick of bench:shapes: bench/matvec's WASM v128 `stream_read` over a 256 MiB buffer (out of
// cache), sampled in Node in short slices just before and just after every engine round, so its bound saw the same load.
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import { makeStreamReader } from '../matvec/executors';
import { prepareStream, streamPass, timeSlice, type Pass, type Tally } from '../matvec/measure';

export const STREAM_BYTES = 256 << 20;

export interface Yardstick {
  /** GB/s (1e9 B/s) of each of `n` slices that together last at least `ms`. */
  slices(ms: number, n: number): number[];
  release(): void;
}

export async function streamYardstick(): Promise<Yardstick> {
  const reader = makeStreamReader({ simd: (await loadNodeKernelModules()).simd, relaxed: null });
  const ptr = prepareStream(reader, STREAM_BYTES);
  const pass: Pass = streamPass(reader, ptr, STREAM_BYTES);
  const now = () => performance.now();
  for (let done = 0; done < STREAM_BYTES; ) done += pass(); // warm-up: JIT, first touch
  return {
    slices(ms, n) {
      const gbps: number[] = [];
      for (let i = 0; i < n; i++) {
        const t: Tally = { bytes: 0, ms: 0 };
        timeSlice(pass, ms / n, now, t);
        gbps.push(t.bytes / t.ms / 1e6);
      }
      return gbps;
    },
    release: () => reader.heap.release(ptr),
  };
}

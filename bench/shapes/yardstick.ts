// The streaming-read yardstick of bench:shapes: bench/matvec's WASM v128 `stream_read` over a 256 MiB buffer (out of
// cache), sampled in Node for a short slice before every engine round, so each round's bound saw the same load.
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import { makeStreamReader } from '../matvec/executors';
import { prepareStream, streamPass, timeSlice, type Pass, type Tally } from '../matvec/measure';

export const STREAM_BYTES = 256 << 20;

export interface Yardstick {
  /** GB/s (1e9 B/s) of one slice of at least `ms`. */
  sample(ms: number): number;
  release(): void;
}

export async function streamYardstick(): Promise<Yardstick> {
  const reader = makeStreamReader({ simd: (await loadNodeKernelModules()).simd, relaxed: null });
  const ptr = prepareStream(reader, STREAM_BYTES);
  const pass: Pass = streamPass(reader, ptr, STREAM_BYTES);
  const now = () => performance.now();
  for (let done = 0; done < STREAM_BYTES; ) done += pass(); // warm-up: JIT, first touch
  return {
    sample(ms) {
      const t: Tally = { bytes: 0, ms: 0 };
      timeSlice(pass, ms, now, t);
      return t.bytes / t.ms / 1e6;
    },
    release: () => reader.heap.release(ptr),
  };
}

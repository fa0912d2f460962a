// The peak of a kernel heap's bytes in use while something runs, seen at every allocation: what admission tests hold
// against the bounds admission reserves by.
import type { Kernels } from '../../src/kernels/types';

export async function peakDuring(k: Kernels, run: () => Promise<void>): Promise<number> {
  const heap = k.heap;
  const alloc = heap.alloc.bind(heap);
  let peak = heap.usedBytes;
  heap.alloc = (n: number) => {
    const p = alloc(n);
    peak = Math.max(peak, heap.usedBytes);
    return p;
  };
  try {
    await run();
  } finally {
    heap.alloc = alloc;
  }
  return peak;
}

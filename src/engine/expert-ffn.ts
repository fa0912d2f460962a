// One expert's SwiGLU FFN over activations as they arrived on the wire (q8_0 blocks or f32 rows), in a kernels
// heap: what an expert server runs, be it the GPU backend's cpu device or an expert-shard Worker. Scratch is
// taken from the heap for the call and given back.
import type { Kernels, Ptr } from '../kernels/types';
import { activationsToF32, type Activations } from '../protocol/activations';
import type { ExpertWeights } from './model';

/**
 * y (n, H) = down(silu(gate x) * up x) for x (n, H). q8_0 rows go to the kernel as blocks (ffnSwigluQ8: the
 * front's quantization is the kernel's, so no round trip through f32); f32 rows as they are; f16 rows (no client
 * of ours sends them) are widened first.
 */
export function ffnOnActivations(k: Kernels, w: ExpertWeights, x: Activations, n: number): Float32Array {
  const y = new Float32Array(n * w.gate.cols);
  ffnInHeap(k, w, x, n, (rows) => y.set(rows));
  return y;
}

/**
 * The same FFN, its output handed to `use` as a view of the heap (valid only during the call): a caller that puts
 * the rows somewhere else (a reply frame) copies them once.
 */
export function ffnInHeap(k: Kernels, w: ExpertWeights, x: Activations, n: number, use: (y: Float32Array) => void): void {
  const H = w.gate.cols;
  const len = x.dtype === 'q8_0' ? x.qs.length : x.data.length;
  if (len !== n * H) throw new RangeError(`expert input holds ${len} values, expected (${n}, ${H})`);
  if (n === 0) return use(new Float32Array(0));
  const taken: Ptr[] = [];
  const take = (bytes: number): Ptr => {
    const p = k.heap.alloc(bytes);
    taken.push(p);
    return p;
  };
  try {
    const yp = take(n * H * 4);
    if (x.dtype === 'q8_0') {
      const xq = take(x.qs.length);
      const xd = take(x.d.length * 2);
      k.heap.u8(xq, x.qs.length).set(new Uint8Array(x.qs.buffer, x.qs.byteOffset, x.qs.length));
      k.heap.u8(xd, x.d.length * 2).set(new Uint8Array(x.d.buffer, x.d.byteOffset, x.d.length * 2));
      k.ffnSwigluQ8(w.gate, w.up, w.down, xq, xd, yp, n);
    } else {
      const xp = take(n * H * 4);
      k.heap.f32(xp, n * H).set(activationsToF32(x));
      k.ffnSwiglu(w.gate, w.up, w.down, xp, yp, n);
    }
    use(k.heap.f32(yp, n * H));
  } finally {
    for (const p of taken.reverse()) k.heap.release(p);
  }
}

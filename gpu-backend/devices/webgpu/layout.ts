// Weights on the GPU: tensors in kernel-memory layout (quants, f32 scales; the word layout wgsl.ts reads) placed
// in a few large buffers ("slabs"), so one dispatch can reach every expert of a slab.
import { quantBytes, scaleCount, type DType } from '../../../src/format/quant';
import type { HostTensor } from '../../../src/format/tensor-layout';

export type { HostTensor }; // a tensor in kernel-memory layout, as src/format/tensor-layout.ts builds it from shard bytes

/** One weight matrix W (rows, cols) resident in a slab; offsets in u32 words from the slab's start. */
export interface GpuTensor {
  readonly dtype: DType;
  readonly rows: number;
  readonly cols: number;
  readonly slab: number;
  /** quants (q8_0/q4_0) or values (f16/f32) */
  readonly q: number;
  /** f32 scales, one per 32-block (0 for float formats) */
  readonly s: number;
}

const ALIGN = 256; // bytes: each tensor part starts on a fresh 256-byte line

const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** Bytes a tensor takes in a slab (both parts, aligned). */
export function gpuBytes(t: { dtype: DType; rows: number; cols: number }): number {
  const n = t.rows * t.cols;
  return align(quantBytes(t.dtype, n), ALIGN) + align(scaleCount(t.dtype, n) * 4, ALIGN);
}

interface Slab {
  buffer: GPUBuffer;
  used: number;
}

/**
 * Bump allocation of weights in slabs. A slab is sized for ~64 experts of the first size that opens it (at
 * least 4 MiB, at most the adapter's storage-binding limit); an allocation that does not fit opens a new one.
 * Weights stay until close(): the backend loads every expert once.
 */
export class WeightSlabs {
  private readonly slabs: Slab[] = [];
  private current = -1;

  constructor(private readonly device: GPUDevice, private readonly maxSlabBytes: number, private readonly usage: number) {}

  get buffers(): GPUBuffer[] { return this.slabs.map((s) => s.buffer); }

  /** Places the tensors (one expert, or one test matrix) together in one slab and uploads them. */
  upload(tensors: HostTensor[]): GpuTensor[] {
    const bytes = tensors.reduce((s, t) => s + gpuBytes(t), 0);
    if (bytes > this.maxSlabBytes) {
      throw new RangeError(`weights of ${bytes} bytes exceed the adapter's storage binding limit (${this.maxSlabBytes} bytes)`);
    }
    let slab = this.slabs[this.current];
    if (!slab || slab.used + bytes > slab.buffer.size) {
      const size = Math.min(this.maxSlabBytes, Math.max(4 << 20, align(bytes, ALIGN) * 64));
      slab = { buffer: this.device.createBuffer({ size, usage: this.usage, label: `weights ${this.slabs.length}` }), used: 0 };
      this.slabs.push(slab);
      this.current = this.slabs.length - 1;
    }
    const out: GpuTensor[] = [];
    for (const t of tensors) {
      const q = slab.used;
      this.write(slab.buffer, q, t.data);
      const s = q + align(t.data.length, ALIGN);
      if (t.scales) this.write(slab.buffer, s, new Uint8Array(t.scales.buffer, t.scales.byteOffset, t.scales.byteLength));
      slab.used += gpuBytes(t);
      out.push({ dtype: t.dtype, rows: t.rows, cols: t.cols, slab: this.current, q: q / 4, s: t.scales ? s / 4 : 0 });
    }
    return out;
  }

  // writeBuffer wants a size that is a multiple of 4: pad the tail (f16 tensors of odd length, q4_0 of 8 elements)
  private write(buffer: GPUBuffer, offset: number, bytes: Uint8Array): void {
    if (bytes.length % 4 === 0) {
      this.device.queue.writeBuffer(buffer, offset, bytes as Uint8Array<ArrayBuffer>); // a SharedArrayBuffer would do too
    } else {
      const padded = new Uint8Array(align(bytes.length, 4));
      padded.set(bytes);
      this.device.queue.writeBuffer(buffer, offset, padded);
    }
  }

  destroy(): void {
    for (const s of this.slabs) s.buffer.destroy();
    this.slabs.length = 0;
  }
}

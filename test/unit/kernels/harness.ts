// Test plumbing for the kernel conformance suite: putting tensors into an executor's heap, reading results
// back, and comparing arrays against per-element tolerances with a readable failure message.
import { expect } from 'vitest';
import { QK, encodeTensor, f16ToF32, quantBytes, quantize, type DType } from '../../../src/format/quant';
import type { Kernels, Mat, Ptr } from '../../../src/kernels/types';

/** Allocations of one test case in one executor's heap, released together at the end. */
export class Arena {
  private readonly ptrs: Ptr[] = [];
  constructor(readonly k: Kernels) {}

  alloc(bytes: number): Ptr {
    const p = this.k.heap.alloc(bytes);
    this.ptrs.push(p);
    return p;
  }

  f32(values: Float32Array): Ptr {
    const p = this.alloc(values.length * 4);
    this.k.heap.f32(p, values.length).set(values);
    return p;
  }

  i32(n: number): Ptr { return this.alloc(n * 4); }

  read(p: Ptr, n: number): Float32Array { return this.k.heap.f32(p, n).slice(); }
  readBytes(p: Ptr, n: number): Uint8Array { return this.k.heap.u8(p, n).slice(); }
  readI32(p: Ptr, n: number): Int32Array { return this.k.heap.i32(p, n).slice(); }

  /** W (rows, cols) stored as `dtype`, laid out as src/format/quant.ts says (scales widened to f32). */
  mat(dtype: DType, rows: number, cols: number, values: Float32Array): Mat {
    if (dtype === 'f32' || dtype === 'f16') {
      const bytes = encodeTensor(dtype, values);
      const data = this.alloc(bytes.length);
      this.k.heap.u8(data, bytes.length).set(bytes);
      return { dtype, rows, cols, data, scales: 0 };
    }
    const q = quantize(dtype, values);
    return this.rawMat(dtype, rows, cols, q.qs, Float32Array.from(q.d, f16ToF32));
  }

  /** A quantized W from explicit quants and f32 scales (hand-made cases), packed where the executor packs weights. */
  rawMat(dtype: 'q8_0' | 'q4_0', rows: number, cols: number, qs: Uint8Array, scales: Float32Array): Mat {
    const data = this.alloc(quantBytes(dtype, rows * cols));
    this.k.heap.u8(data, qs.length).set(qs);
    const sp = this.alloc((rows * cols / QK) * 4);
    this.k.heap.f32(sp, scales.length).set(scales);
    const m: Mat = { dtype, rows, cols, data, scales: sp };
    this.k.packWeights?.(m);
    return m;
  }

  /** Run one kernel call; whatever scratch the executor takes from the heap it must give back. */
  op(call: () => void): void {
    const before = this.k.heap.usedBytes;
    call();
    expect(this.k.heap.usedBytes, `${this.k.name}: heap bytes in use after the call (scratch not released?)`).toBe(before);
  }

  releaseAll(): void {
    while (this.ptrs.length) this.k.heap.release(this.ptrs.pop()!);
  }
}

/** Worst element of a comparison, as a ratio of its error to its tolerance (<= 1 passes). */
export interface Closeness { worst: number; index: number; got: number; want: number; tol: number }

export function closeness(got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number): Closeness {
  let c: Closeness = { worst: 0, index: -1, got: 0, want: 0, tol: 0 };
  for (let i = 0; i < want.length; i++) {
    const t = tol(i);
    const err = Math.abs(got[i] - want[i]);
    const ratio = Number.isNaN(err) ? Infinity : err === 0 ? 0 : err / t;
    if (ratio > c.worst || c.index < 0) c = { worst: ratio, index: i, got: got[i], want: want[i], tol: t };
  }
  return c;
}

/** Per-case record of the worst error/tolerance ratio, printed when CONFORMANCE_VERBOSE is set. */
export const report: string[] = [];

export function expectClose(label: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  const c = closeness(got, want, tol);
  if (process.env.CONFORMANCE_VERBOSE) report.push(`${label}: worst err/tol ${c.worst.toExponential(2)} (err ${Math.abs(c.got - c.want).toExponential(2)})`);
  if (!(c.worst <= 1)) {
    expect.fail(`${label}: element ${c.index} is ${c.got}, want ${c.want} (error ${Math.abs(c.got - c.want).toExponential(3)} > tolerance ${c.tol.toExponential(3)}, ratio ${c.worst.toExponential(2)})`);
  }
}

export function expectExact(label: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
  expect(got.length, `${label}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i]) && got[i] !== want[i]) expect.fail(`${label}: element ${i} is ${got[i]}, want exactly ${want[i]}`);
  }
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

// The reference executor's own contract beyond the numeric cases: its heap, its name, its memory bound.
import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../../../src/kernels/reference';

describe('ts-ref executor', () => {
  it('is named ts-ref and hands out 64-byte aligned pointers above its base', () => {
    const k = createReferenceKernels();
    expect(k.name).toBe('ts-ref');
    const p = k.heap.alloc(10);
    expect(p % 64).toBe(0);
    expect(p).toBeGreaterThanOrEqual(1024);
    k.heap.release(p);
    expect(k.heap.usedBytes).toBe(0);
  });

  it('grows its memory on demand and stops at maximumPages', () => {
    const k = createReferenceKernels({ maximumPages: 4 });
    const a = k.heap.alloc(3 * 65536); // past the first page: memory grows
    expect(k.heap.memory.buffer.byteLength).toBeGreaterThanOrEqual(a + 3 * 65536);
    expect(() => k.heap.alloc(2 * 65536)).toThrow(RangeError);
  });

  it('keeps working when a kernel call grows memory (views are re-read after every alloc)', () => {
    const k = createReferenceKernels({ maximumPages: 256 });
    const H = 64;
    const I = 16384; // 64 KiB per hidden buffer: more than the last page's slack, so ffnSwiglu's scratch grows memory
    const gate = { dtype: 'f32' as const, rows: I, cols: H, data: k.heap.alloc(I * H * 4), scales: 0 };
    const down = { dtype: 'f32' as const, rows: H, cols: I, data: k.heap.alloc(H * I * 4), scales: 0 };
    k.heap.f32(gate.data, I * H).fill(0.01);
    k.heap.f32(down.data, H * I).fill(0.001);
    const x = k.heap.alloc(H * 4);
    const y = k.heap.alloc(H * 4);
    k.heap.f32(x, H).fill(1);
    const before = k.heap.memory.buffer.byteLength;
    k.ffnSwiglu(gate, gate, down, x, y, 1);
    expect(k.heap.memory.buffer.byteLength).toBeGreaterThan(before);
    // gate = up = 0.64 per hidden unit: y = I * 0.001 * silu(0.64) * 0.64
    const h = (0.64 / (1 + Math.exp(-0.64))) * 0.64;
    for (const v of k.heap.f32(y, H)) expect(v).toBeCloseTo(I * 0.001 * h, 3);
  });
});

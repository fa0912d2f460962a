// The heap every executor allocates from: alignment, reuse, coalescing, growth and misuse detection.
import { describe, expect, it } from 'vitest';
import { Heap } from '../../../src/kernels/heap';

const fresh = (maximum = 64) => new Heap(new WebAssembly.Memory({ initial: 1, maximum }), 1024);

describe('Heap', () => {
  it('hands out 64-byte aligned, non-overlapping blocks and counts used bytes', () => {
    const h = fresh();
    const a = h.alloc(10);
    const b = h.alloc(100);
    expect(a % 64).toBe(0);
    expect(b % 64).toBe(0);
    expect(b).toBeGreaterThanOrEqual(a + 64);
    expect(h.usedBytes).toBe(64 + 128);
    h.u8(a, 10).fill(0xaa);
    h.u8(b, 100).fill(0xbb);
    expect(h.u8(a, 10).every((v) => v === 0xaa)).toBe(true);
  });

  it('reuses released space and coalesces neighbours back into one block', () => {
    const h = fresh();
    const a = h.alloc(1000);
    const b = h.alloc(1000);
    const c = h.alloc(1000);
    h.release(a);
    h.release(b);
    const d = h.alloc(2000); // fits only in the coalesced a+b
    expect(d).toBe(a);
    h.release(d);
    h.release(c);
    expect(h.usedBytes).toBe(0);
    expect(h.alloc(3000)).toBe(a); // everything went back to the top
  });

  it('grows the memory on demand and fails clearly past the maximum', () => {
    const h = fresh(4);
    const p = h.alloc(3 * 65536);
    h.f32(p, 3 * 16384).fill(1); // the view is valid after growth
    expect(() => h.alloc(2 * 65536)).toThrow(RangeError);
  });

  it('rejects releasing a pointer it never handed out, or twice', () => {
    const h = fresh();
    const a = h.alloc(64);
    expect(() => h.release(a + 64)).toThrow(/unknown pointer/);
    h.release(a);
    expect(() => h.release(a)).toThrow(/unknown pointer/);
  });

  it('keeps exact accounting under alloc/release churn with thousands of live blocks', () => {
    // the scratch pattern of every matmul (speed of this path: bench, not here)
    const h = fresh(65536);
    for (let i = 0; i < 10_000; i++) h.alloc(100);
    for (let i = 0; i < 10_000; i++) h.release(h.alloc(4096));
    expect(h.usedBytes).toBe(10_000 * 128);
  });
});

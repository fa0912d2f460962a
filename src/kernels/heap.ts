// A first-fit allocator over a WebAssembly.Memory, shared by every executor: model weights live for the
// isolate, each generation's KV cache and scratch are allocated for it and freed when it ends.
import type { Ptr } from './types';

const ALIGN = 64; // cache line; also satisfies v128 loads
const PAGE = 65536;

interface Block { ptr: Ptr; bytes: number }

export class Heap {
  private readonly free: Block[] = []; // sorted by ptr, coalesced
  private readonly used = new Map<Ptr, number>();
  private top: Ptr;

  /** `base`: first byte the allocator may hand out (above any static data of a WASM module). */
  constructor(readonly memory: WebAssembly.Memory, base: Ptr) {
    this.top = align(base);
  }

  alloc(bytes: number): Ptr {
    const size = align(Math.max(bytes, 1));
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.bytes < size) continue;
      const ptr = b.ptr;
      if (b.bytes === size) this.free.splice(i, 1);
      else { b.ptr += size; b.bytes -= size; }
      this.used.set(ptr, size);
      return ptr;
    }
    const ptr = this.top;
    const end = ptr + size;
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE)); // throws RangeError past the maximum
    this.top = end;
    this.used.set(ptr, size);
    return ptr;
  }

  release(ptr: Ptr): void {
    const size = this.used.get(ptr);
    if (size === undefined) throw new Error(`heap: release of unknown pointer ${ptr}`);
    this.used.delete(ptr);
    let i = 0;
    while (i < this.free.length && this.free[i].ptr < ptr) i++;
    this.free.splice(i, 0, { ptr, bytes: size });
    // coalesce with neighbours, then give the tail back to `top`
    if (i + 1 < this.free.length && ptr + size === this.free[i + 1].ptr) {
      this.free[i].bytes += this.free[i + 1].bytes;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].ptr + this.free[i - 1].bytes === ptr) {
      this.free[i - 1].bytes += this.free[i].bytes;
      this.free.splice(i, 1);
      i--;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.ptr + last.bytes === this.top) {
      this.top = last.ptr;
      this.free.pop();
    }
  }

  /** Bytes currently handed out. */
  get usedBytes(): number {
    let s = 0;
    for (const v of this.used.values()) s += v;
    return s;
  }

  // Views are made fresh on every call: memory.grow detaches the old ArrayBuffer.
  f32(ptr: Ptr, len: number): Float32Array { return new Float32Array(this.memory.buffer, ptr, len); }
  i32(ptr: Ptr, len: number): Int32Array { return new Int32Array(this.memory.buffer, ptr, len); }
  u8(ptr: Ptr, len: number): Uint8Array { return new Uint8Array(this.memory.buffer, ptr, len); }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

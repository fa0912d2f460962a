// A first-fit allocator over a WebAssembly.Memory, shared by every executor: model weights live for the
// isolate, each generation's KV cache and scratch are allocated for it and freed when it ends.
/** Byte offset into the heap (re-exported by types.ts, the kernel seam). */
export type Ptr = number;

const ALIGN = 64; // cache line; also satisfies v128 loads
const PAGE = 65536;
// Each block starts with a header of one cache line holding its size and a tag, so release() needs no
// JS-side map: a Map of thousands of live blocks degrades to ~10 us per alloc/release pair under churn.
const HEADER = ALIGN;
const TAG = 0x6d6f6531; // 'moe1': catches a release of a pointer this heap never handed out

interface Block { ptr: Ptr; bytes: number }

export class Heap {
  private readonly free: Block[] = []; // sorted by ptr, coalesced; ptr/bytes include the header
  private used = 0;
  private top: Ptr;

  /** `base`: first byte the allocator may hand out (above any static data of a WASM module). */
  constructor(readonly memory: WebAssembly.Memory, base: Ptr) {
    this.top = align(base);
  }

  alloc(bytes: number): Ptr {
    const size = align(Math.max(bytes, 1)) + HEADER;
    let block = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.bytes < size) continue;
      block = b.ptr;
      if (b.bytes === size) this.free.splice(i, 1);
      else { b.ptr += size; b.bytes -= size; }
      break;
    }
    if (block < 0) {
      block = this.top;
      const end = block + size;
      const have = this.memory.buffer.byteLength;
      if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE)); // throws RangeError past the maximum
      this.top = end;
    }
    const ptr = block + HEADER;
    const header = new Uint32Array(this.memory.buffer, ptr - 8, 2);
    header[0] = size;
    header[1] = TAG;
    this.used += size - HEADER;
    return ptr;
  }

  release(ptr: Ptr): void {
    const header = ptr >= HEADER && ptr % ALIGN === 0 && ptr <= this.top ? new Uint32Array(this.memory.buffer, ptr - 8, 2) : undefined;
    if (!header || header[1] !== TAG) throw new Error(`heap: release of unknown pointer ${ptr}`);
    const size = header[0];
    header[1] = 0; // a second release of the same pointer is caught too
    this.used -= size - HEADER;
    const block = ptr - HEADER;
    let i = 0;
    while (i < this.free.length && this.free[i].ptr < block) i++;
    this.free.splice(i, 0, { ptr: block, bytes: size });
    // coalesce with neighbours, then give the tail back to `top`
    if (i + 1 < this.free.length && block + size === this.free[i + 1].ptr) {
      this.free[i].bytes += this.free[i + 1].bytes;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].ptr + this.free[i - 1].bytes === block) {
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
    return this.used;
  }

  // Views are made fresh on every call: memory.grow detaches the old ArrayBuffer.
  f32(ptr: Ptr, len: number): Float32Array { return new Float32Array(this.memory.buffer, ptr, len); }
  i32(ptr: Ptr, len: number): Int32Array { return new Int32Array(this.memory.buffer, ptr, len); }
  u8(ptr: Ptr, len: number): Uint8Array { return new Uint8Array(this.memory.buffer, ptr, len); }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

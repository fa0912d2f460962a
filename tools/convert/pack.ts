// Packs encoded tensors into one model object (trunk.bin or an expert file) at 64-byte aligned offsets,
// so every tensor starts on a cache line and any typed-array view of it is aligned.
import { concatBytes } from '../../src/common/bytes';

export const TENSOR_ALIGN = 64;

export class ObjectPacker {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  /** Append `bytes` after zero padding to the next aligned offset; returns that offset. */
  add(bytes: Uint8Array): number {
    const pad = (TENSOR_ALIGN - (this.size % TENSOR_ALIGN)) % TENSOR_ALIGN;
    if (pad) this.parts.push(new Uint8Array(pad));
    const offset = this.size + pad;
    this.parts.push(bytes);
    this.size = offset + bytes.length;
    return offset;
  }

  finish(): Uint8Array {
    return concatBytes(this.parts);
  }
}

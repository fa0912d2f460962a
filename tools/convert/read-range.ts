// Exact-length positional reads from an open file, for the checkpoint readers (safetensors and GGUF): a short
// read means the file ends early, reported through the caller's error type.
import type { FileHandle } from 'node:fs/promises';

export async function readRange(file: FileHandle, offset: number, length: number, fileEnded: (msg: string) => Error): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await file.read(out, got, length - got, offset + got);
    if (bytesRead === 0) throw fileEnded(`file ended after ${offset + got} bytes, expected ${offset + length}`);
    got += bytesRead;
  }
  return out;
}

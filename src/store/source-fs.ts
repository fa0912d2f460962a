// ObjectSource over a local model folder, for Node only (tools, tests, the GPU backend). The Worker must not
// import this file: it pulls in node:fs.
import { open, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ObjectNotFoundError } from '../common/errors';
import { checkObjectName, checkRange, ShortReadError, type ObjectSource } from './source';

/** Bytes per chunk of a streamed read: large enough that the per-read cost vanishes, small beside any heap. */
export const FS_STREAM_CHUNK_BYTES = 1 << 20;

export function fsSource(dir: string): ObjectSource {
  const root = resolve(dir);
  const path = (name: string): string => {
    checkObjectName(name);
    return join(root, ...name.split('/'));
  };
  const missing = (name: string, e: unknown): unknown =>
    (e as NodeJS.ErrnoException).code === 'ENOENT' ? new ObjectNotFoundError(name, root) : e;
  const openObject = async (name: string) => {
    try {
      return await open(path(name), 'r');
    } catch (e) {
      throw missing(name, e);
    }
  };
  return {
    async get(name) {
      try {
        const b = await readFile(path(name));
        return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
      } catch (e) {
        throw missing(name, e);
      }
    },
    async getRange(name, offset, length) {
      checkRange(offset, length);
      const file = await openObject(name);
      try {
        const out = new Uint8Array(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await file.read(out, got, length - got, offset + got);
          if (bytesRead === 0) throw new ShortReadError(name, offset, length, got, root);
          got += bytesRead;
        }
        return out;
      } finally {
        await file.close();
      }
    },
    async *stream(name) {
      const file = await openObject(name);
      try {
        const chunk = new Uint8Array(FS_STREAM_CHUNK_BYTES); // one buffer, reused: no megabytes of garbage per load
        for (;;) {
          const { bytesRead } = await file.read(chunk, 0, chunk.length, null);
          if (bytesRead === 0) return;
          yield chunk.subarray(0, bytesRead);
        }
      } finally {
        await file.close();
      }
    },
    describe: () => root,
  };
}

// ObjectSource over an R2 bucket (the Worker's model store): `<prefix>/<name>` keys, ranged reads via R2's
// `range`, `arrayBuffer()` for whole small objects and the body's stream for large ones (a BYOB reader cannot
// target WASM memory anyway, so chunks are copied into the heap by the consumer).
import { MoeError, ObjectNotFoundError } from '../common/errors';
import { bodyChunks, checkObjectName, checkRange, ObjectReadError, ShortReadError, type ObjectSource } from './source';

export function r2Source(bucket: R2Bucket, prefix: string): ObjectSource {
  const base = prefix.replace(/^\/+|\/+$/g, '');
  const key = (name: string): string => {
    checkObjectName(name);
    return base ? `${base}/${name}` : name;
  };
  const where = `r2://${base}`;
  // An R2 failure (the binding throws, or the body stream breaks) names the object, as every other load error does.
  const read = async <T>(name: string, op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (e) {
      throw e instanceof MoeError ? e : new ObjectReadError(name, where, e);
    }
  };
  return {
    async get(name) {
      const k = key(name);
      return read(name, async () => {
        const obj = await bucket.get(k);
        if (!obj) throw new ObjectNotFoundError(name, where);
        return new Uint8Array(await obj.arrayBuffer());
      });
    },
    async getRange(name, offset, length) {
      checkRange(offset, length);
      const k = key(name);
      if (length === 0) {
        // R2 rejects empty ranges; still report a missing object
        if (!(await read(name, () => bucket.head(k)))) throw new ObjectNotFoundError(name, where);
        return new Uint8Array(0);
      }
      let obj: R2ObjectBody | null;
      try {
        obj = await bucket.get(k, { range: { offset, length } });
      } catch (e) {
        // R2 refuses an offset past the end (error 10039) instead of returning fewer bytes
        if (/range is not satisfiable|10039/i.test(String((e as Error)?.message))) throw new ShortReadError(name, offset, length, 0, where);
        throw new ObjectReadError(name, where, e);
      }
      if (!obj) throw new ObjectNotFoundError(name, where);
      const body = obj;
      const bytes = new Uint8Array(await read(name, () => body.arrayBuffer()));
      if (bytes.length !== length) throw new ShortReadError(name, offset, length, bytes.length, where);
      return bytes;
    },
    async *stream(name) {
      const k = key(name);
      const obj = await read(name, () => bucket.get(k));
      if (!obj) throw new ObjectNotFoundError(name, where);
      yield* bodyChunks(obj.body, (next) => read(name, next));
    },
    describe: () => where,
  };
}

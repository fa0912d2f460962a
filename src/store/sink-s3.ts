// Writes model objects to an S3-compatible store (R2 from outside Cloudflare, for `npm run cli -- upload`),
// signed like the reads in source-s3.ts. Every object carries its SHA-256 twice: as x-amz-content-sha256, which
// the store checks against the body it receives (a corrupted transfer is refused), and as x-amz-meta-sha256,
// which a later HEAD reads back so an interrupted upload resumes without re-sending what is already there.
import { s3Endpoint, type S3SourceOptions } from './source-s3';

export interface StoredObject {
  readonly bytes: number;
  /** x-amz-meta-sha256 as stored; null when the object was written without it */
  readonly sha256: string | null;
}

export interface S3Sink {
  /** The object's size and recorded digest, or null when it is absent. */
  head(name: string): Promise<StoredObject | null>;
  put(name: string, body: Uint8Array, sha256: string): Promise<void>;
  delete(name: string): Promise<void>;
  describe(): string;
}

export function s3Sink(opts: S3SourceOptions): S3Sink {
  const { client, url, where, failed } = s3Endpoint(opts);
  return {
    async head(name) {
      const res = await client.fetch(url(name), { method: 'HEAD' });
      if (res.status === 404) return null;
      if (!res.ok) throw await failed(name, res);
      const bytes = Number(res.headers.get('content-length'));
      if (!Number.isSafeInteger(bytes)) throw new Error(`${where}/${name}: HEAD answered without a content-length`);
      return { bytes, sha256: res.headers.get('x-amz-meta-sha256') };
    },
    async put(name, body, sha256) {
      const res = await client.fetch(url(name), {
        method: 'PUT',
        body: body as Uint8Array<ArrayBuffer>,
        headers: {
          'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
          'x-amz-content-sha256': sha256, // signed as the payload hash: the store rejects a body that differs
          'x-amz-meta-sha256': sha256,
        },
      });
      if (!res.ok) throw await failed(name, res);
      await res.body?.cancel();
    },
    async delete(name) {
      const res = await client.fetch(url(name), { method: 'DELETE' });
      if (!res.ok && res.status !== 404) throw await failed(name, res);
      await res.body?.cancel();
    },
    describe: () => where,
  };
}

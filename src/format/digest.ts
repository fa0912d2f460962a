// SHA-256 for the converter, the Worker and the backend: one-shot through WebCrypto (Node 22 and workerd), and
// incremental for objects streamed into the heap (workerd's crypto.DigestStream, Node's createHash).

/** Lowercase hex SHA-256 of `bytes` (the form manifest.objects[*].sha256 holds). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

/** A SHA-256 fed chunk by chunk: the digest of an object that is never whole in memory. */
export interface Sha256Stream {
  /** Hashes `bytes` next; the caller keeps them unchanged until the returned promise resolves. */
  update(bytes: Uint8Array): Promise<void>;
  /** Lowercase hex of everything updated so far; the stream takes no more bytes after it. */
  hex(): Promise<string>;
}

type NodeCrypto = typeof import('node:crypto');

/**
 * The incremental SHA-256 of this runtime, picked when called: workerd has `crypto.DigestStream` (no WebCrypto
 * API hashes incrementally), Node has `node:crypto`, reached through process.getBuiltinModule so the Worker's
 * bundle never imports it (the Worker runs without nodejs_compat).
 */
export function sha256Stream(): Sha256Stream {
  const Digest = (crypto as { DigestStream?: typeof DigestStream }).DigestStream;
  if (Digest) {
    const sink = new Digest('SHA-256');
    const writer = sink.getWriter();
    return {
      update: (bytes) => writer.write(bytes),
      async hex() {
        await writer.close();
        return hex(await sink.digest);
      },
    };
  }
  const nodeCrypto = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
  if (!nodeCrypto) throw new Error('no incremental SHA-256 in this runtime: neither crypto.DigestStream nor node:crypto');
  const hash = nodeCrypto.createHash('sha256');
  return {
    update: async (bytes) => void hash.update(bytes),
    hex: async () => hash.digest('hex'),
  };
}

function hex(digest: ArrayBuffer): string {
  const b = new Uint8Array(digest);
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

/** Bytes of a model tag: the first bytes of SHA-256(manifest.json), which name one model version on the wire. */
export const MODEL_TAG_BYTES = 8;

/** A model version's tag: the Worker sends it with every expert call, the backend refuses calls for another model. */
export async function modelTagOf(manifestBytes: Uint8Array): Promise<Uint8Array> {
  const digest = await crypto.subtle.digest('SHA-256', manifestBytes as Uint8Array<ArrayBuffer>);
  return new Uint8Array(digest, 0, MODEL_TAG_BYTES).slice();
}

// SHA-256 through WebCrypto, which Node 22 and workerd both provide: one digest routine for the converter,
// the Worker and the backend.

/** Lowercase hex SHA-256 of `bytes` (the form manifest.objects[*].sha256 holds). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  const b = new Uint8Array(digest);
  let hex = '';
  for (let i = 0; i < b.length; i++) hex += b[i].toString(16).padStart(2, '0');
  return hex;
}

/** Bytes of a model tag: the first bytes of SHA-256(manifest.json), which name one model version on the wire. */
export const MODEL_TAG_BYTES = 8;

/** A model version's tag: the Worker sends it with every expert call, the backend refuses calls for another model. */
export async function modelTagOf(manifestBytes: Uint8Array): Promise<Uint8Array> {
  const digest = await crypto.subtle.digest('SHA-256', manifestBytes as Uint8Array<ArrayBuffer>);
  return new Uint8Array(digest, 0, MODEL_TAG_BYTES).slice();
}

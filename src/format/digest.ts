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

// Runs in workerd before each test file: puts models/default into the local R2 under the served prefix,
// a copy with one flipped byte in CORRUPT_OBJECT under CORRUPT_MODEL_ID (for the integrity tests), and a
// clean copy under HOTSET_MODEL_ID (the admin tests write its hot-set.json).
import { env } from 'cloudflare:workers';
import { inject } from 'vitest';
import { CORRUPT_MODEL_ID, CORRUPT_OBJECT, HOTSET_MODEL_ID } from './cases';

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const files = inject('modelFiles');
const prefix = `${env.MODEL_PREFIX}/`;
for (const [name, b64] of Object.entries(files)) {
  const bytes = fromBase64(b64);
  await env.MODELS.put(`${prefix}${env.MODEL_ID}/${name}`, bytes);
  await env.MODELS.put(`${prefix}${HOTSET_MODEL_ID}/${name}`, bytes);
  if (name === CORRUPT_OBJECT) bytes[bytes.length >> 1] ^= 0x01;
  await env.MODELS.put(`${prefix}${CORRUPT_MODEL_ID}/${name}`, bytes);
}

// Reads a JSON request body under a byte limit: 413 beyond the limit (without buffering more than it),
// 400 for anything that is not a JSON object.
import { InvalidRequestError } from '../common/errors';
import { PayloadTooLargeError } from './errors';
import { concatBytes } from '../common/bytes';

export async function readJsonBody(req: Request, maxBytes: number): Promise<Record<string, unknown>> {
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw new PayloadTooLargeError(maxBytes);
  const bytes = await readLimited(req.body, maxBytes);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new InvalidRequestError(
      `We could not parse the JSON body of your request: ${e instanceof Error ? e.message : String(e)}`,
      null,
      'invalid_json',
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRequestError('The request body must be a JSON object', null, 'invalid_json');
  }
  return value as Record<string, unknown>;
}

// Chunked bodies carry no content-length, so the limit is enforced while reading too.
async function readLimited(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new PayloadTooLargeError(maxBytes);
    }
    parts.push(value);
  }
  return concatBytes(parts);
}

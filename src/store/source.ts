// Where a model's objects come from (R2 in the Worker, a folder in Node tools and the backend), and the one
// place that checks an object against its manifest digest before anything uses it.
import { MoeError, ObjectNotFoundError, ShardIntegrityError } from '../common/errors';
import { modelTagOf, sha256Hex, sha256Stream } from '../format/digest';
import { ManifestError, objectNames, parseManifest, type Manifest } from '../format/manifest';

/** Read access to the objects of one model (names relative to the model, e.g. `experts/0/3.bin`). */
export interface ObjectSource {
  /** The whole object; ObjectNotFoundError when it is absent. */
  get(name: string): Promise<Uint8Array>;
  /** `length` bytes from `offset`; an error when the object is absent or shorter. */
  getRange(name: string, offset: number, length: number): Promise<Uint8Array>;
  /**
   * The whole object as a sequence of chunks, so that it is never whole in memory (the trunk streams into the
   * heap); ObjectNotFoundError when it is absent. A chunk is the consumer's until it asks for the next one: a
   * source may reuse its buffer.
   */
  stream(name: string): AsyncIterable<Uint8Array>;
  /** Where the objects live, for error messages (e.g. `r2://models/default`). */
  describe(): string;
}

/** Read an object listed in the manifest and check its size and SHA-256; ShardIntegrityError on mismatch. */
export async function readVerified(source: ObjectSource, manifest: Manifest, name: string): Promise<Uint8Array> {
  const expected = listedObject(manifest, name);
  const bytes = await source.get(name);
  const sha256 = await sha256Hex(bytes);
  if (bytes.length !== expected.bytes || sha256 !== expected.sha256) {
    throw new ShardIntegrityError(name, expected, { bytes: bytes.length, sha256 });
  }
  return bytes;
}

/** The manifest's size and digest of `name`; ObjectNotFoundError when the manifest does not list it. */
export function listedObject(manifest: Manifest, name: string): { bytes: number; sha256: string } {
  const expected = manifest.objects[name];
  if (!expected) throw new ObjectNotFoundError(name, `the manifest of ${manifest.name}`, 'is not listed');
  return expected;
}

/**
 * Stream an object listed in the manifest through `take` (chunk, and the object offset of its first byte; only
 * bytes within the manifest's size; valid only during the call), hashing it on the way, then check its size and SHA-256: ShardIntegrityError
 * on mismatch, as readVerified. Whatever `take` did with the bytes must not be used until this resolves; on a
 * throw, the caller discards it. The way to load an object too large to hold twice (the trunk).
 */
export async function streamVerified(
  source: ObjectSource,
  manifest: Manifest,
  name: string,
  take: (chunk: Uint8Array, offset: number) => void,
): Promise<void> {
  const expected = listedObject(manifest, name);
  const hash = sha256Stream();
  let got = 0;
  for await (const chunk of source.stream(name)) {
    const inside = chunk.subarray(0, Math.max(0, Math.min(chunk.length, expected.bytes - got)));
    if (inside.length > 0) take(inside, got);
    await hash.update(chunk);
    got += chunk.length;
  }
  const sha256 = await hash.hex();
  if (got !== expected.bytes || sha256 !== expected.sha256) throw new ShardIntegrityError(name, expected, { bytes: got, sha256 });
}

/** A model's manifest and its tag (the model version on the wire, see src/format/digest.ts). */
export interface TaggedManifest {
  readonly manifest: Manifest;
  readonly tag: Uint8Array;
}

/**
 * Read and validate `manifest.json` (it carries the digests, so it is the one object read unverified): the one
 * manifest read of the Worker, the CLI and the backend. ObjectNotFoundError when it is absent.
 */
export async function readTaggedManifest(source: ObjectSource): Promise<TaggedManifest> {
  const bytes = await source.get(objectNames.manifest);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ManifestError(`${source.describe()}/${objectNames.manifest} is not JSON (${(e as Error).message})`);
  }
  return { manifest: parseManifest(json), tag: await modelTagOf(bytes) };
}

/** The manifest alone (tools that never talk to a backend). */
export async function readManifest(source: ObjectSource): Promise<Manifest> {
  return (await readTaggedManifest(source)).manifest;
}

/** A ranged read that came back shorter than asked: the object is smaller than the manifest says. */
export class ShortReadError extends MoeError {
  constructor(readonly object: string, offset: number, length: number, got: number, where: string) {
    super(`model object ${object} in ${where}: asked for ${length} bytes at offset ${offset}, got ${got}`, {
      status: 500,
      code: 'model_object_short',
      type: 'server_error',
    });
  }
}

/** The store itself failed (an R2 error, a network failure): transient, so 503 and the next request retries the load. */
export class ObjectReadError extends MoeError {
  constructor(readonly object: string, where: string, cause: unknown) {
    super(`model object ${object} could not be read from ${where}: ${(cause as Error)?.message ?? String(cause)}`, {
      status: 503,
      code: 'model_store_unavailable',
      type: 'server_error',
      cause,
    });
  }
}

/** Reject names that could escape the model's prefix or folder (they come from a manifest we may not trust). */
export function checkObjectName(name: string): void {
  if (name === '' || name.startsWith('/') || name.includes('\\') || name.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new ManifestError(`object name ${JSON.stringify(name)} is not a plain relative path`);
  }
}

export function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`invalid byte range: offset ${offset}, length ${length}`);
  }
}

/** Bytes per chunk of a streamed body: the planner's one load chunk (tools/placement.ts LOAD_CHUNK_BYTES). */
export const BODY_CHUNK_BYTES = 2 ** 20;

/** workerd's BYOB reader: `readAtLeast` fills a view with at least `min` bytes unless the stream ends first. */
interface ByobReader {
  read(view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>;
  readAtLeast?(min: number, view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>;
  cancel(reason?: unknown): Promise<void>;
}

/**
 * The chunks of a response body, each read through `read` (a source's error mapping). A byte stream (R2's body,
 * fetch's in workerd) is read into one buffer of BODY_CHUNK_BYTES, reused: R2 otherwise hands out a fresh 4 KiB
 * chunk per read, ~18,000 ArrayBuffers of garbage for a 74 MB trunk. A chunk is the consumer's until it asks for the
 * next one (ObjectSource.stream). A consumer that stops early (a bad entry, an error) cancels the rest of the body
 * instead of leaving it open.
 */
export async function* bodyChunks(
  body: ReadableStream<Uint8Array>,
  read: (next: () => Promise<ReadableStreamReadResult<Uint8Array>>) => Promise<ReadableStreamReadResult<Uint8Array>> = (next) => next(),
): AsyncGenerator<Uint8Array> {
  let byob: ByobReader | null = null;
  try {
    byob = body.getReader({ mode: 'byob' }) as unknown as ByobReader;
  } catch {
    // not a byte stream: its own chunks, below
  }
  const reader = byob ?? body.getReader();
  let finished = false;
  try {
    if (byob) {
      const r = byob;
      let buffer: Uint8Array = new Uint8Array(BODY_CHUNK_BYTES);
      for (;;) {
        const view = buffer;
        // a BYOB read transfers the buffer: the result's view is the same memory under a new ArrayBuffer
        const { done, value } = await read(() => (r.readAtLeast ? r.readAtLeast(view.length, view) : r.read(view)));
        if (value && value.length > 0) yield value;
        if (done) {
          finished = true;
          return;
        }
        buffer = new Uint8Array(value!.buffer, 0, value!.buffer.byteLength);
      }
    }
    const r = reader as ReadableStreamDefaultReader<Uint8Array>;
    for (;;) {
      const { done, value } = await read(() => r.read());
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
  }
}

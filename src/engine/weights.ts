// Moves tensors from verified shard bytes into the kernel heap as `Mat`s (layout: src/format/tensor-layout.ts):
// whole from an object in memory (experts), or streamed from a large object straight into place (the trunk).
// Weights are loaded once per isolate and shared read-only by every generation.
import { ObjectNotFoundError } from '../common/errors';
import { ManifestError, objectNames, tensorNames, type Manifest, type TensorEntry } from '../format/manifest';
import { isQuantized, memoryBytes, quantBytes, scaleCount } from '../format/quant';
import { checkShard, matrixOf, shardOf, writeShardPart } from '../format/tensor-layout';
import type { Kernels, Mat, Ptr } from '../kernels/types';
import { listedObject, streamVerified, type ObjectSource } from '../store/source';

/** A 1-D f32 vector (norm weights, biases) in the heap. */
export interface Vec {
  readonly n: number;
  readonly data: Ptr;
}

/** Copy one tensor (its bytes inside `object`) into the heap: quants as stored, scales widened straight into place. */
export function uploadMat(k: Kernels, entry: TensorEntry, object: Uint8Array): Mat {
  const shard = shardOf(entry, object); // ManifestError when the entry does not fit its object
  const m = allocMat(k, entry);
  writeMatPart(k, m, shard, 0);
  return m;
}

/** Heap room for one tensor in kernel layout, its contents not yet written (writeMatPart fills it). */
export function allocMat(k: Kernels, entry: TensorEntry): Mat {
  const { dtype, rows, cols } = matrixOf(entry);
  const n = rows * cols;
  const data = k.heap.alloc(memoryBytes(dtype, n));
  return { dtype, rows, cols, data, scales: isQuantized(dtype) ? data + quantBytes(dtype, n) : 0 };
}

/** Writes `part`, the bytes of m's shard from shard offset `at`, into m's heap layout (views made now: the heap may have grown). */
export function writeMatPart(k: Kernels, m: Mat, part: Uint8Array, at: number): void {
  const n = m.rows * m.cols;
  const scales = isQuantized(m.dtype) ? k.heap.f32(m.scales, scaleCount(m.dtype, n)) : null;
  writeShardPart(m.dtype, n, part, at, k.heap.u8(m.data, quantBytes(m.dtype, n)), scales);
}

/** Vectors are 1-D f32 tensors; anything else in a vector's place is a broken manifest. */
export function checkVec(entry: TensorEntry): TensorEntry {
  if (entry.dtype !== 'f32' || entry.shape.length !== 1) throw new ManifestError(`tensor in ${entry.object} at offset ${entry.offset}: expected a 1-D f32 tensor, got ${entry.dtype} ${JSON.stringify(entry.shape)}`);
  return entry;
}

export function vecOf(m: Mat): Vec {
  return { n: m.cols, data: m.data };
}

/** A tensor whose heap room is allocated and whose bytes are still to come from its object. */
export interface Pending {
  readonly entry: TensorEntry;
  readonly mat: Mat;
}

/**
 * Streams the object `name` once, each chunk's bytes copied straight to their tensors' places (`tensors`: the
 * pending ones inside it), and resolves when its size and SHA-256 matched the manifest (streamVerified). No
 * object-sized copy is ever made: the peak is the heap plus one chunk. On a throw the tensors hold garbage; the
 * caller releases them.
 */
export async function streamIntoHeap(k: Kernels, source: ObjectSource, manifest: Manifest, name: string, tensors: readonly Pending[]): Promise<void> {
  const byOffset = [...tensors].sort((a, b) => a.entry.offset - b.entry.offset);
  let first = 0; // tensors before it end before the current chunk (chunks come in order)
  await streamVerified(source, manifest, name, (chunk, offset) => {
    const end = offset + chunk.length;
    while (first < byOffset.length && byOffset[first].entry.offset + byOffset[first].entry.bytes <= offset) first++;
    for (let i = first; i < byOffset.length && byOffset[i].entry.offset < end; i++) {
      const { entry, mat } = byOffset[i];
      const from = Math.max(offset, entry.offset);
      const to = Math.min(end, entry.offset + entry.bytes);
      if (from < to) writeMatPart(k, mat, chunk.subarray(from - offset, to - offset), from - entry.offset);
    }
  });
}

/** WebAssembly pages are 64 KiB (https://webassembly.github.io/spec/core/exec/runtime.html#memory-instances). */
const WASM_PAGE = 65536;

/**
 * Grows the heap's memory once so that tensors of `bytes` in all (their memoryBytes) about to be allocated find
 * it there, instead of one memory.grow per tensor: in Node each grow set off a full garbage collection (GC and
 * grow were ~7 s of a 14 s granite load in a CPU profile; bench/load-time). It never takes memory the allocations
 * would not take anyway: every live block lies below the allocator's top, so after them the memory holds at least
 * usedBytes + bytes (the rest, block headers and alignment, still grows as it did). A hint only: a memory that
 * cannot grow that far is left as it is, and the allocation that does not fit fails as it always did.
 */
export function reserveHeap(k: Kernels, bytes: number): void {
  const memory = k.heap.memory;
  const want = k.heap.usedBytes + bytes;
  const have = memory.buffer.byteLength;
  if (!(want > have) || !Number.isSafeInteger(want)) return;
  try {
    memory.grow(Math.ceil((want - have) / WASM_PAGE));
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
}

/**
 * Heap bytes of `entries` (a list made when called: building it may throw) in kernel layout, for reserveHeap; 0
 * when an entry is broken: the load then fails on it by name, and nothing is reserved for a model that will not load.
 */
export function plannedBytes(manifest: Manifest, entries: () => Iterable<TensorEntry>): number {
  try {
    let total = 0;
    for (const entry of entries()) {
      checkShard(entry, listedObject(manifest, entry.object).bytes);
      const { dtype, rows, cols } = matrixOf(entry);
      total += memoryBytes(dtype, rows * cols);
    }
    return total;
  } catch (e) {
    if (e instanceof ManifestError || e instanceof ObjectNotFoundError) return 0;
    throw e;
  }
}

/**
 * The tensors of trunk.bin that a trunk load allocates: the head (the embedding; the output unless the embedding
 * ties it) and/or all the rest (norms, attention, routers, shared experts).
 */
export function trunkEntries(manifest: Manifest, parts: { head: boolean; layers: boolean }): TensorEntry[] {
  const head = new Set<string>([tensorNames.tokenEmbedding, tensorNames.output]);
  return Object.entries(manifest.tensors)
    .filter(([name, entry]) => entry.object === objectNames.trunk && !(name === tensorNames.output && manifest.architecture.tieWordEmbeddings))
    .filter(([name]) => (head.has(name) ? parts.head : parts.layers))
    .map(([, entry]) => entry);
}

export function releaseMat(k: Kernels, m: Mat | Vec): void {
  k.heap.release(m.data);
}

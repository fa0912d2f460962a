// The trunk streams from its object straight into the heap (src/engine/weights.ts streamIntoHeap): the heap holds
// bit for bit what uploading each tensor from the whole verified object gives, however the stream is chunked
// (boundaries inside an f32 value and inside an f16 scale included); a corrupt, short or broken stream throws the
// error readVerified would and leaves the heap as it found it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShardIntegrityError } from '../../../src/common/errors';
import { isQuantized, memoryBytes, quantBytes } from '../../../src/format/quant';
import { tensorEntry, tensorNames, type Manifest, type TensorEntry } from '../../../src/format/manifest';
import { loadTrunk, type TrunkWeights } from '../../../src/engine/model';
import { uploadMat, type Vec } from '../../../src/engine/weights';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import type { Kernels, Mat } from '../../../src/kernels/types';
import { readManifest, readVerified, type ObjectSource } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { convert } from '../../../tools/convert';
import { sharedPath } from '../../shared-dir';

/** Every tensor the trunk holds, by manifest name. */
function named(w: TrunkWeights): [string, Mat | Vec][] {
  const t = tensorNames;
  const out: [string, Mat | Vec | undefined][] = [[t.tokenEmbedding, w.embed], [t.outputNorm, w.outputNorm]];
  if (!w.arch.tieWordEmbeddings) out.push([t.output, w.output]);
  w.layers.forEach((L, l) => {
    out.push([t.attnNorm(l), L.attnNorm], [t.attnQ(l), L.q], [t.attnK(l), L.k], [t.attnV(l), L.v], [t.attnOutput(l), L.o]);
    out.push([t.attnQBias(l), L.qBias], [t.attnKBias(l), L.kBias], [t.attnVBias(l), L.vBias], [t.attnQNorm(l), L.qNorm], [t.attnKNorm(l), L.kNorm]);
    out.push([t.ffnNorm(l), L.ffnNorm], [t.router(l), L.router], [t.sharedExpertGate(l), L.sharedGate]);
    if (L.shared) out.push([t.sharedGate(l), L.shared.gate], [t.sharedUp(l), L.shared.up], [t.sharedDown(l), L.shared.down]);
  });
  return out.filter((e): e is [string, Mat | Vec] => e[1] !== undefined);
}

/** `source` with trunk.bin's stream re-cut at `cuts` (object offsets) and then `edit`ed chunk by chunk. */
function recut(source: ObjectSource, cuts: (size: number) => number[], edit: (chunk: Uint8Array, at: number) => Uint8Array = (c) => c): ObjectSource {
  return {
    ...source,
    async *stream(name) {
      const whole = await source.get(name);
      if (name !== 'trunk.bin') return yield whole;
      const at = [...new Set([0, ...cuts(whole.length).filter((c) => c > 0 && c < whole.length), whole.length])].sort((a, b) => a - b);
      for (let i = 0; i + 1 < at.length; i++) yield edit(whole.slice(at[i], at[i + 1]), at[i]);
    },
  };
}

/** The trunk streamed from `source` equals each tensor uploaded from the whole verified trunk.bin, bit for bit. */
async function expectSameAsWholeUpload(source: ObjectSource, manifest: Manifest): Promise<void> {
  const k = await loadNodeKernels();
  const ref = await loadNodeKernels();
  const trunkBytes = await readVerified(source, manifest, 'trunk.bin');
  const before = k.heap.usedBytes;
  const w = await loadTrunk(k, source, manifest);
  const tensors = named(w);
  expect(tensors.length).toBe(Object.values(manifest.tensors).filter((e) => e.object === 'trunk.bin').length);
  for (const [name, m] of tensors) {
    const entry = tensorEntry(manifest, name);
    const want = uploadMat(ref, entry, trunkBytes);
    ref.packWeights?.(want); // as loadTrunk leaves it: in the executor's layout
    const n = want.rows * want.cols;
    const bytes = memoryBytes(entry.dtype, n);
    expect(Buffer.compare(k.heap.u8(m.data, bytes), ref.heap.u8(want.data, bytes)), name).toBe(0);
  }
  expect(w.bytes).toBe(k.heap.usedBytes - before);
}

let dir: string;
let fixture: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-edge-trunk-stream-'));
  fixture = join(dir, 'model');
  await convert({ inDir: sharedPath('fixtures', 'granitemoe'), outDir: fixture, quant: 'q4_0', warn: () => {} });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The first quantized matrix and the first f32 vector of the trunk: where to cut inside a scale and a value. */
function firstOf(manifest: Manifest): { quantized: TensorEntry; vector: TensorEntry } {
  const trunk = Object.values(manifest.tensors).filter((e) => e.object === 'trunk.bin');
  return { quantized: trunk.find((e) => isQuantized(e.dtype))!, vector: trunk.find((e) => e.dtype === 'f32' && e.shape.length === 1)! };
}

describe('loadTrunk streams trunk.bin into the heap', () => {
  it('the default model, as the folder source chunks it and re-cut at odd sizes', async () => {
    const src = fsSource('models/default');
    const manifest = await readManifest(src);
    await expectSameAsWholeUpload(src, manifest);
    await expectSameAsWholeUpload(recut(src, (size) => Array.from({ length: Math.ceil(size / 4093) }, (_, i) => i * 4093)), manifest);
  });

  it('a granitemoe fixture at q4_0: chunks cut inside a scale, inside an f32 value, and at random', async () => {
    const src = fsSource(fixture);
    const manifest = await readManifest(src);
    const { quantized, vector } = firstOf(manifest);
    const n = quantized.shape.reduce((x, y) => x * y, 1);
    const scale0 = quantized.offset + quantBytes(quantized.dtype, n);
    const inside = () => [scale0 + 1, scale0 + 4 + 1, vector.offset + 2, vector.offset + 4 + 3];
    await expectSameAsWholeUpload(recut(src, inside), manifest);
    let seed = 7;
    const random = (size: number) => Array.from({ length: 300 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) % size));
    await expectSameAsWholeUpload(recut(src, random), manifest);
  });

  it('a flipped byte -> ShardIntegrityError, every tensor released', async () => {
    const src = fsSource(fixture);
    const manifest = await readManifest(src);
    const k = await loadNodeKernels();
    const before = k.heap.usedBytes;
    const middle = manifest.objects['trunk.bin'].bytes >> 1;
    const flipped = recut(src, () => [middle], (chunk, at) => {
      if (at === middle) chunk[0] ^= 0x10;
      return chunk;
    });
    const err = (await loadTrunk(k, flipped, manifest).catch((e: unknown) => e)) as ShardIntegrityError;
    expect(err).toBeInstanceOf(ShardIntegrityError);
    expect([err.object, err.actual.bytes, err.expected.bytes]).toEqual(['trunk.bin', manifest.objects['trunk.bin'].bytes, manifest.objects['trunk.bin'].bytes]);
    expect(err.actual.sha256).not.toBe(err.expected.sha256);
    expect(k.heap.usedBytes).toBe(before);
    // and the same heap loads the intact trunk afterwards
    await loadTrunk(k, src, manifest);
  });

  it('a short or long stream -> ShardIntegrityError with both sizes; a stream that breaks -> its error; heap restored', async () => {
    const src = fsSource(fixture);
    const manifest = await readManifest(src);
    const size = manifest.objects['trunk.bin'].bytes;
    const k: Kernels = await loadNodeKernels();
    const before = k.heap.usedBytes;
    const short = recut(src, () => [size - 100], (chunk, at) => (at === size - 100 ? chunk.subarray(0, 0) : chunk));
    const e1 = (await loadTrunk(k, short, manifest).catch((e: unknown) => e)) as ShardIntegrityError;
    expect(e1).toBeInstanceOf(ShardIntegrityError);
    expect([e1.actual.bytes, e1.expected.bytes]).toEqual([size - 100, size]);
    expect(k.heap.usedBytes).toBe(before);
    const long = recut(src, () => [], (chunk) => Uint8Array.from([...chunk, 0]));
    const e2 = (await loadTrunk(k, long, manifest).catch((e: unknown) => e)) as ShardIntegrityError;
    expect([e2.actual.bytes, e2.expected.bytes]).toEqual([size + 1, size]);
    expect(k.heap.usedBytes).toBe(before);
    const broken: ObjectSource = {
      ...src,
      async *stream(name) {
        for await (const chunk of src.stream(name)) {
          yield chunk.subarray(0, 1000);
          throw new Error('stream reset by peer');
        }
      },
    };
    await expect(loadTrunk(k, broken, manifest)).rejects.toThrow(/stream reset by peer/);
    expect(k.heap.usedBytes).toBe(before);
  });
});

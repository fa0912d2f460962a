// A load grows the kernel heap's memory for its weights once, up front (src/engine/load.ts plannedWeightBytes,
// src/engine/weights.ts reserveHeap), instead of once per tensor, and to no more than the tensors take anyway: the
// Worker's memory budget must not pay for the shortcut. A manifest that will not load reserves nothing.
import { describe, expect, it } from 'vitest';
import { ManifestError, tensorEntry, tensorNames, type Manifest } from '../../../src/format/manifest';
import { loadFromManifest, plannedWeightBytes } from '../../../src/engine/load';
import { loadHead, loadTrunk, loadWeights, type ExpertSelection } from '../../../src/engine/model';
import { plannedBytes, trunkEntries } from '../../../src/engine/weights';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import type { Kernels } from '../../../src/kernels/types';
import { readManifest } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';

const source = fsSource('models/default');

/** Fresh kernels whose memory counts its grow calls. */
async function counted(): Promise<{ k: Kernels; grows: () => number }> {
  const k = await loadNodeKernels();
  const memory = k.heap.memory;
  const grow = memory.grow.bind(memory);
  let n = 0;
  memory.grow = (pages: number) => (n++, grow(pages));
  return { k, grows: () => n };
}

describe('loading reserves the heap once', () => {
  for (const [label, experts] of [['every expert', 'all'], ['two experts of layer 0', new Map([[0, [1, 3]]])]] as [string, ExpertSelection][]) {
    it(`${label}: a few grows instead of one per expert matrix, to the very size the tensors alone grow it to`, async () => {
      const manifest = await readManifest(source);
      const planned = plannedWeightBytes(manifest, experts);
      const reserved = await counted();
      const model = await loadFromManifest(source, manifest, reserved.k, { experts });
      const alone = await counted();
      const weights = await loadWeights(alone.k, source, manifest, experts);
      expect(weights.bytes).toBe(model.weights.bytes);
      expect(planned).toBeGreaterThan(0);
      expect(planned).toBeLessThanOrEqual(weights.bytes); // a lower bound: never more than the allocations take
      expect(reserved.k.heap.memory.buffer.byteLength).toBe(alone.k.heap.memory.buffer.byteLength);
      expect(alone.grows()).toBeGreaterThan(reserved.grows()); // loadWeights alone reserves only its trunk
      expect(reserved.grows()).toBeLessThanOrEqual(4);
    });
  }

  // the Worker's own loads: the trunk (with the head, or without it when an expert shard holds it) and a shard's head
  for (const [label, parts, load] of [
    ['the trunk', { head: true, layers: true }, (k: Kernels, m: Manifest) => loadTrunk(k, source, m)],
    ['the trunk without its head', { head: false, layers: true }, (k: Kernels, m: Manifest) => loadTrunk(k, source, m, { head: false })],
    ['the head alone', { head: true, layers: false }, (k: Kernels, m: Manifest) => loadHead(k, source, m)],
  ] as const) {
    it(`${label}: one grow for its tensors, reserving no more than they take`, async () => {
      const manifest = await readManifest(source);
      const { k, grows } = await counted();
      const w = await load(k, manifest);
      const planned = plannedBytes(manifest, () => trunkEntries(manifest, parts));
      expect(planned).toBeGreaterThan(0);
      expect(planned).toBeLessThanOrEqual(w.bytes);
      expect(grows()).toBeLessThanOrEqual(3);
    });
  }

  it('reserves nothing for a manifest that will not load, which still fails on its broken entry', async () => {
    const manifest = await readManifest(source);
    const embed = tensorEntry(manifest, tensorNames.tokenEmbedding);
    const broken: Manifest = { ...manifest, tensors: { ...manifest.tensors, [tensorNames.tokenEmbedding]: { ...embed, bytes: embed.bytes + 1 } } };
    expect(plannedWeightBytes(broken, 'all')).toBe(0);
    const { k, grows } = await counted();
    const before = k.heap.memory.buffer.byteLength;
    await expect(loadFromManifest(source, broken, k)).rejects.toThrow(ManifestError);
    expect(grows()).toBe(0);
    expect(k.heap.memory.buffer.byteLength).toBe(before);
  });
});

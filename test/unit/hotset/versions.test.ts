// Hot-set versions in one heap: a swap loads only the experts that are new, shares the rest, leaves running
// generations on their version, and gives a retired version's experts back when its last lease ends.
import { describe, expect, it } from 'vitest';
import { readManifest } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { loadTrunk } from '../../../src/engine/model';
import { resolveHotSet } from '../../../src/hotset/resolve';
import { parseHotExperts } from '../../../src/hotset/spec';
import { HotWeights } from '../../../src/hotset/versions';
import { loadNodeKernels } from '../../../src/kernels/load-node';

describe('HotWeights', () => {
  it('swaps atomically, keeps leased versions alive, frees retired experts, restores the heap', async () => {
    const source = fsSource('models/default');
    const manifest = await readManifest(source);
    const k = await loadNodeKernels();
    const trunk = await loadTrunk(k, source, manifest);
    const base = k.heap.usedBytes;
    const hot = new HotWeights(k, source, manifest, trunk);
    const set = (v: string) => resolveHotSet(parseHotExperts(v), manifest, null);

    const v1 = await hot.install(set('{"layers": {"0": [0, 1], "1": [2]}}'), 1, 'r2');
    const oneExpert = (k.heap.usedBytes - base) / 3;
    const lease = hot.acquire();
    expect(lease.version).toBe(v1);

    const v2 = await hot.install(set('{"layers": {"0": [1, 4], "1": []}}'), 2, 'r2');
    expect(hot.version).toBe(v2);
    expect(v2.weights.experts[0]![1]).toBe(v1.weights.experts[0]![1]); // shared, not reloaded
    expect(v2.weights.experts[0]![0]).toBeUndefined();
    expect(v2.weights.embed).toBe(v1.weights.embed); // one trunk
    expect(hot.liveVersions).toBe(2);
    expect(hot.residentExperts).toBe(4); // 0/0, 0/1, 1/2 (v1, leased) + 0/4 (v2)

    lease.release();
    lease.release(); // idempotent
    expect(hot.liveVersions).toBe(1);
    expect(hot.residentExperts).toBe(2);
    expect(k.heap.usedBytes - base).toBe(2 * oneExpert);

    // a failed load (an expert whose object is missing) leaves the current version in place and leaks nothing
    const broken = { ...source, get: async (name: string) => (name === 'experts/1/7.bin' ? Promise.reject(new Error('gone')) : source.get(name)) };
    const hot2 = new HotWeights(k, broken, manifest, trunk);
    await hot2.install(set('none'), 0, 'env');
    const before = k.heap.usedBytes;
    await expect(hot2.install(set('{"layers": {"1": [3, 7]}}'), 1, 'r2')).rejects.toThrow('gone');
    expect(hot2.version.id).toBe(0);
    expect(k.heap.usedBytes).toBe(before);
  });
});

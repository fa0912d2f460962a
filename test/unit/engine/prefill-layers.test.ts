// Layer-major prefill (what the backend's prefill call runs) leaves the same KV cache bytes and gives the same
// logits as the Worker's chunked prefill, for every fixture architecture and KV-cache type, over several chunks;
// decoding after it continues identically.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forward, PREFILL_CHUNK, Sequence } from '../../../src/engine/forward';
import { KV_CACHE_TYPES, kvTensorBytes, type KvCacheType } from '../../../src/engine/kv-cache';
import { readKvRows } from '../../../src/engine/kv-transfer';
import { loadTextModel, type LocalModel } from '../../../src/engine/load';
import { prefill } from '../../../src/engine/prefill';
import { finishPrefill, prefillByLayer } from '../../../src/engine/prefill-layers';
import { argmax } from '../../../src/engine/sampler';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { fsSource } from '../../../src/store/source-fs';
import { convert } from '../../../tools/convert';
import { sharedPath } from '../../shared-dir';

const ARCHS = ['mixtral', 'qwen2_moe', 'olmoe', 'granitemoe'];
const out = mkdtempSync(join(tmpdir(), 'moe-edge-prefill-layers-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function cacheBytes(m: LocalModel, seq: Sequence): Uint8Array[] {
  const a = m.manifest.architecture;
  return Array.from({ length: a.numLayers }, (_, l) => {
    const b = new Uint8Array(2 * kvTensorBytes(a, seq.length, seq.kvType));
    readKvRows(m.kernels.heap, seq, l, 0, seq.length, b);
    return b;
  });
}

// the fixtures' heads are 16 wide, so they take float caches only; the default model's 32 take every type
const CASES = [
  ...ARCHS.map((arch) => ({ name: `${arch} fixture (q8_0 weights)`, arch, types: ['f32', 'f16'] as KvCacheType[] })),
  { name: 'default model', arch: null, types: KV_CACHE_TYPES },
];

describe.each(CASES)('$name', ({ arch, types }) => {
  let model: LocalModel;
  beforeAll(async () => {
    let dir = 'models/default';
    if (arch) await convert({ inDir: sharedPath('fixtures', arch), outDir: (dir = join(out, arch)), quant: 'q8_0', warn: () => {} });
    model = await loadTextModel(fsSource(dir), await loadNodeKernels());
  });

  it.each(types)('KV cache %s: same cache bytes, logits and next tokens as chunked prefill', async (kvType) => {
    const a = model.manifest.architecture;
    const n = 2 * PREFILL_CHUNK + 13; // three chunks, the last partial
    const tokens = Array.from({ length: n }, (_, i) => (i * 7919 + 3) % a.vocabSize);
    const k = model.kernels;
    const e = model.expertExecutor;
    const chunked = new Sequence(k, model.weights, n + 4, { kvType });
    const layered = new Sequence(k, model.weights, n + 4, { kvType });
    try {
      const want = (await prefill(k, chunked, e, tokens, { logits: 'last' }))[0];
      const seen: number[] = [];
      const hidden = await prefillByLayer(k, layered, e, tokens, { onLayer: (l) => void seen.push(l) });
      expect(seen).toEqual([...Array(a.numLayers).keys()]);
      expect(layered.length).toBe(n);
      const got = (await finishPrefill(k, layered, e, hidden, { logits: 'last' }))[0];
      expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer))).toBe(true);
      const [cw, cg] = [cacheBytes(model, chunked), cacheBytes(model, layered)];
      for (let l = 0; l < a.numLayers; l++) expect(Buffer.from(cg[l]).equals(Buffer.from(cw[l])), `layer ${l}`).toBe(true);
      let [tw, tg] = [argmax(want), argmax(got)];
      for (let s = 0; s < 3; s++) {
        const rw = (await forward(k, chunked, e, [tw], { logits: 'last' }))[0];
        const rg = (await forward(k, layered, e, [tg], { logits: 'last' }))[0];
        expect(Array.from(rg)).toEqual(Array.from(rw));
        [tw, tg] = [argmax(rw), argmax(rg)];
      }
    } finally {
      chunked.release();
      layered.release();
    }
  });
});

// The decode bound of bench:shapes (bench/shapes/bound.ts) against hand arithmetic on the committed default model:
// 4 layers, H 256, 8 heads / 4 KV heads of 32, 8 experts top-2 of I 512, vocab 3072, untied head, q8_0 everywhere.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeRunBytes, decodeStepBytes } from '../../../bench/shapes/bound';
import { parseManifest } from '../../../src/format/manifest';

const manifest = parseManifest(JSON.parse(readFileSync(new URL('../../../models/default/manifest.json', import.meta.url), 'utf8')));

describe('decodeStepBytes on the default model', () => {
  it('the architecture is the one the arithmetic below assumes', () => {
    const a = manifest.architecture;
    expect([a.numLayers, a.hiddenSize, a.numHeads, a.numKvHeads, a.headDim, a.numExperts, a.topK, a.expertFfnSize, a.vocabSize, a.tieWordEmbeddings]).toEqual([4, 256, 8, 4, 32, 8, 2, 512, 3072, false]);
    expect(manifest.quant).toEqual({ trunk: 'q8_0', experts: 'q8_0' });
  });

  it('heap bytes (q8_0 at 1.125 B/weight), f32 cache', () => {
    // per layer: q, o 256x256 and k, v 128x256 at 1.125 B; two f32 norms of 256; the f32 router 8x256
    const layer = (2 * 256 * 256 + 2 * 128 * 256) * 1.125 + 2 * 256 * 4 + 8 * 256 * 4;
    const trunk = 4 * layer + 256 * 4 /* output_norm */ + 256 * 1.125 /* one embedding row */;
    const experts = 4 * 2 * 3 * 512 * 256 * 1.125; // 4 layers x top-2 x gate/up/down
    const head = 3072 * 256 * 1.125;
    const kv = 2 * 4 * 129 * (4 * 32) * 4; // K and V x 4 layers x 129 rows x 128 f32
    const b = decodeStepBytes(manifest, 129, 'f32', 'heap');
    expect(b).toEqual({ trunk, experts, kv, head, total: trunk + experts + kv + head });
    expect(b.total).toBe(5_879_072);
  });

  it('gguf bytes (ggml blocks: q8_0 at 34 B per 32), q8_0 cache', () => {
    const q8 = 34 / 32;
    const layer = (2 * 256 * 256 + 2 * 128 * 256) * q8 + 2 * 256 * 4 + 8 * 256 * 4;
    const b = decodeStepBytes(manifest, 129, 'q8_0', 'gguf');
    expect(b.trunk).toBe(4 * layer + 256 * 4 + 256 * q8);
    expect(b.experts).toBe(4 * 2 * 3 * 512 * 256 * q8);
    expect(b.head).toBe(3072 * 256 * q8);
    expect(b.kv).toBe(2 * 4 * 129 * 128 * q8);
  });

  it('the heap q8_0 cache counts f32 scales (1.125 B per element)', () => {
    expect(decodeStepBytes(manifest, 64, 'q8_0', 'heap').kv).toBe(2 * 4 * 64 * 128 * 1.125);
    expect(decodeStepBytes(manifest, 64, 'q4_0', 'heap').kv).toBe(2 * 4 * 64 * 128 * 0.625);
  });

  it('a run of decode steps averages the cache over the rows each step attends', () => {
    // 128 steps after 128 tokens attend 129..256 rows: 192.5 on average
    const run = decodeRunBytes(manifest, 128, 128, 'f32', 'heap');
    expect(run.kv).toBe(2 * 4 * 192.5 * 128 * 4);
    expect(run.total - run.kv).toBe(decodeStepBytes(manifest, 1, 'f32', 'heap').total - decodeStepBytes(manifest, 1, 'f32', 'heap').kv);
  });
});

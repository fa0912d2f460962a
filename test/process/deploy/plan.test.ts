// The placement report (tools/placement.ts, `npm run cli -- plan`): its sizes are the converter's tensor list
// (tools/convert/hf-config.ts) at the block formats of src/format/quant.ts, and for a converted model exactly what
// the engine allocates and R2 stores; the published configs of models/configs/ give docs/placement.md's table.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadTrunk } from '../../../src/engine/model';
import { architectureFromHf, hfTensorSources } from '../../../tools/convert/hf-config';
import { parseManifest } from '../../../src/format/manifest';
import { canQuantizeRows, memoryBytes, shardBytes, type DType } from '../../../src/format/quant';
import { fsSource } from '../../../src/store/source-fs';
import { expertHeapBytes } from '../../../src/hotset/resolve';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { expertTensors, heapBytes, ISOLATE_BYTES, LOAD_CHUNK_BYTES, place, storedBytes, trunkTensors } from '../../../tools/placement';
import { sharedPath } from '../../shared-dir';

const CONFIGS = ['granite-3.0-1b-a400m', 'OLMoE-1B-7B-0924', 'Qwen1.5-MoE-A2.7B'];
const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8'));

describe('sizes from the architecture', () => {
  it('equal the converter tensor list at every quant (published configs and the shared fixtures)', async () => {
    const configs = [
      ...CONFIGS.map((c) => `models/configs/${c}.json`),
      ...['mixtral', 'qwen2_moe', 'olmoe', 'granitemoe'].map((d) => sharedPath('fixtures', d, 'config.json')),
    ];
    for (const path of configs) {
      const arch = architectureFromHf(await readJson(path));
      const sources = hfTensorSources(arch);
      for (const q of ['q8_0', 'q4_0', 'f16', 'f32'] as DType[]) {
        // the converter's rule: matrices take the quant when their rows are whole blocks, the rest stay f32
        const dtype = (s: (typeof sources)[number]) => (s.kind === 'matrix' && canQuantizeRows(q, s.shape.at(-1)!) ? q : 'f32');
        const sum = (list: typeof sources, f: typeof memoryBytes) => list.reduce((n, s) => n + f(dtype(s), s.shape.reduce((x, y) => x * y, 1)), 0);
        const trunk = sources.filter((s) => !s.expert);
        const expert = sources.filter((s) => s.expert?.layer === 0 && s.expert.expert === 0);
        expect(heapBytes(trunkTensors(arch), q), `${path} ${q}`).toBe(sum(trunk, memoryBytes));
        expect(storedBytes(trunkTensors(arch), q), `${path} ${q}`).toBe(sum(trunk, shardBytes));
        expect(heapBytes(expertTensors(arch), q), `${path} ${q}`).toBe(sum(expert, memoryBytes));
      }
    }
  });

  it('for a converted model: what R2 stores and what the engine allocates', async () => {
    const manifest = parseManifest(await readJson('models/default/manifest.json'));
    const p = place(manifest.architecture, manifest.quant, 100 * 2 ** 20);
    expect(p.trunkStored).toBe(manifest.objects['trunk.bin'].bytes);
    expect(p.expertHeap).toBe(expertHeapBytes(manifest, 0, 0));
    const trunk = await loadTrunk(await loadNodeKernels(), fsSource('models/default'), manifest);
    expect(p.trunk.total).toBe(trunk.bytes);
  });

  it('KV cache = layers x 2 x context x kv heads x head dim x 4 bytes; hot experts fill the budget', () => {
    const a = architectureFromHf({ model_type: 'mixtral', vocab_size: 1024, hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 2, intermediate_size: 512, num_local_experts: 8, max_position_embeddings: 1024 });
    const q = { trunk: 'q8_0', experts: 'q4_0' } as const;
    const p = place(a, q, 40 * 2 ** 20, { context: 300 });
    expect(p.kvCache).toBe(4 * 2 * 300 * 2 * 32 * 4);
    expect(p.fixed).toBe(p.trunk.total + p.kvCache + p.scratch + p.runtime + p.tokenizer);
    expect(p.hotPerLayer).toBe(Math.min(8, Math.floor((40 * 2 ** 20 - p.fixed) / (4 * p.expertHeap))));
    expect(p.fitsEdge).toBe(true);
    expect(place(a, q, p.fixed + 4 * p.expertHeap * 3, { context: 300 }).hotPerLayer).toBe(3);
  });
});

describe('npm run cli -- plan', () => {
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const plan = async (...args: string[]) => {
    const { stdout } = await promisify(execFile)(process.execPath, [tsx, 'tools/cli.ts', 'plan', ...args], { maxBuffer: 1 << 24 });
    return stdout;
  };

  it('--config: granite-3.0-1b-a400m does not run at the edge at its full context; --context finds what does', async () => {
    const r = JSON.parse(await plan('--config', 'models/configs/granite-3.0-1b-a400m.json', '--json', '--kv-cache-type', 'f32'));
    const byQuant = Object.fromEntries(r.placements.map((p: any) => [p.label, p]));
    expect(r.architecture).toMatchObject({ modelType: 'granitemoe', numLayers: 24, numExperts: 32, topK: 8, vocabSize: 49155, contextLength: 4096 });
    expect(byQuant.q4_0.kvCache).toBe(24 * 2 * 4096 * 8 * 64 * 4);
    for (const q of ['q8_0', 'q4_0', 'f16']) expect(byQuant[q].fitsEdge, q).toBe(false);
    expect(byQuant.q8_0.trunk.total).toBeGreaterThan(ISOLATE_BYTES);
    expect(byQuant.q4_0.maxContext).toBeGreaterThan(0);
    const text = await plan('--config', 'models/configs/granite-3.0-1b-a400m.json', '--budget-mb', '100');
    expect(text).toMatch(/^granite-3.0-1b-a400m \(granitemoe\): 24 layers x 32 experts \(top-8\)/);
    expect(text).toMatch(/hot experts per layer in 100 MiB +0 of 32/);
    // the trunk streams into the heap (one chunk in JS at a time), so q4_0's load peak is no longer what binds
    expect(text).toMatch(/runs at the edge \(128 MiB\) +no: trunk too big +ctx <= \d+ +no: trunk too big/);
    expect(byQuant.q4_0.loadPeak).toBe(byQuant.q4_0.runtime + byQuant.q4_0.tokenizer + byQuant.q4_0.trunk.total + LOAD_CHUNK_BYTES);
    expect(byQuant.q4_0.loadPeak).toBeLessThan(ISOLATE_BYTES);
  });

  it('--model: the tiny default model fits with every expert hot, as converted and at each quant', async () => {
    const text = await plan('--model', 'models/default', '--budget-mb', '100');
    expect(text).toMatch(/as converted \(q8_0\)/);
    expect(text).toMatch(/hot experts per layer in 100 MiB +(8 of 8 +){3}8 of 8/);
    expect(text).toMatch(/runs at the edge \(128 MiB\) +yes +yes +yes +yes/);
    expect(text).toMatch(/trunk\.bin in R2: ([\d.]+) MiB \(as converted, computed \1 MiB\)/);
  });

  it('--kv-cache-type: the KV cache at that type (default KV_CACHE_TYPE\'s, q8_0), as src/engine/kv-cache.ts sizes it', async () => {
    const at = async (...t: string[]) => JSON.parse(await plan('--config', 'models/configs/granite-3.0-1b-a400m.json', '--context', '2048', '--quant', 'q4_0', '--json', ...t)).placements[0];
    const positions = 24 * 2 * 2048 * 8 * 64;
    expect((await at()).kvCache).toBe(positions + (positions / 32) * 4); // q8_0: quants + f32 scales, 54 MiB
    expect((await at('--kv-cache-type', 'q4_0')).kvCache).toBe(positions / 2 + (positions / 32) * 4);
    expect((await at('--kv-cache-type', 'f16')).kvCache).toBe(positions * 2);
    expect(await plan('--config', 'models/configs/granite-3.0-1b-a400m.json', '--context', '2048', '--kv-cache-type', 'q4_0')).toMatch(/KV cache \(2048 positions, q4_0\) +30\.0/);
    await expect(plan('--config', 'models/configs/granite-3.0-1b-a400m.json', '--kv-cache-type', 'q5_1')).rejects.toThrow(/--kv-cache-type: unknown q5_1/);
  });

  it('refuses a missing source or a bad budget', async () => {
    await expect(plan('--budget-mb', '100')).rejects.toThrow(/one of --model \/ --config/);
    await expect(plan('--model', 'models/default', '--budget-mb', '-1')).rejects.toThrow(/--budget-mb/);
  });
});

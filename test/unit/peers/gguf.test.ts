// GGUF reader/writer and exporter against llama.cpp's own files: the fixtures' GGUFs read and write back byte
// for byte, and a checkpoint converted by us then exported holds exactly the tensors of llama.cpp's Q8_0 GGUF.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggmlToShard, metaValue, readGguf, ropePermuteRows, shardToGgml, writeGguf, type GgufFile } from '../../../tools/convert/gguf';
import { encodeTensor, shardBytes, type DType } from '../../../src/format/quant';
import { fsSource } from '../../../src/store/source-fs';
import { convert } from '../../../tools/convert';
import { exportGguf } from '../../../tools/export-gguf';
import { sharedPath } from '../../shared-dir';

const readFile = (p: string) => {
  const b = readFileSync(p);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
};

describe('GGUF reader and writer', () => {
  it.each(['mixtral', 'granitemoe', 'qwen2_moe', 'olmoe'])('%s fixture GGUFs: read -> write is byte-identical, and reads back equal', (arch) => {
    for (const name of ['model-q8_0.gguf', 'model-f32.gguf']) {
      const bytes = readFile(join(sharedPath('fixtures', arch), name));
      const file = readGguf(bytes);
      const again = writeGguf(file);
      expect(Buffer.compare(Buffer.from(again), Buffer.from(bytes))).toBe(0);
      const back = readGguf(again);
      expect(back.metadata).toEqual(file.metadata);
      expect(back.tensors.map((t) => [t.name, t.dims, t.dtype])).toEqual(file.tensors.map((t) => [t.name, t.dims, t.dtype]));
    }
  });

  it('reads the metadata llama.cpp wrote (names, dims in ggml order, types)', () => {
    const f = readGguf(readFile(sharedPath('fixtures', 'mixtral', 'model-q8_0.gguf')));
    expect(metaValue(f, 'general.architecture')).toBe('llama');
    expect(metaValue(f, 'llama.expert_count')).toBe(8);
    const gate = f.tensors.find((t) => t.name === 'blk.0.ffn_gate_exps.weight')!;
    expect([gate.dims, gate.dtype]).toEqual([[64, 32, 8], 'q8_0']);
    expect(f.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!.dtype).toBe('f32');
  });

  it.each(['q8_0', 'q4_0', 'f16', 'f32'] as DType[])('%s: shard layout <-> ggml blocks is lossless', (dtype) => {
    const n = 32 * 37;
    const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) * (1 + (i % 5)));
    const shard = encodeTensor(dtype, values);
    const g = shardToGgml(dtype, shard, n);
    expect(g.length).toBe(shardBytes(dtype, n));
    expect(Buffer.compare(Buffer.from(ggmlToShard(dtype, g, n)), Buffer.from(shard))).toBe(0);
    if (dtype === 'q8_0') {
      // block_q8_0 { f16 d; int8 qs[32] }: block 1 starts with its scale, then its 32 quants
      expect([...g.subarray(34, 36)]).toEqual([...shard.subarray(n + 2, n + 4)]);
      expect([...g.subarray(36, 68)]).toEqual([...shard.subarray(32, 64)]);
    }
  });

  it('rejects what is not GGUF v3', () => {
    expect(() => readGguf(new TextEncoder().encode('GGML....'))).toThrow(/bad magic/);
    const bytes = readFile(sharedPath('fixtures', 'mixtral', 'model-q8_0.gguf')).slice(0, 1000);
    expect(() => readGguf(bytes)).toThrow(/truncated|past the end/);
  });
});

describe.each(['mixtral', 'qwen2_moe', 'olmoe', 'granitemoe'])('export-gguf %s', (arch) => {
  const out = mkdtempSync(join(tmpdir(), 'moe-edge-gguf-'));
  let ours: GgufFile;
  let theirs: GgufFile;
  beforeAll(async () => {
    const dir = sharedPath('fixtures', arch);
    await convert({ inDir: dir, outDir: join(out, 'q8_0'), quant: 'q8_0', warn: () => {} });
    ours = readGguf(writeGguf(await exportGguf(fsSource(join(out, 'q8_0'))))); // as written to disk
    theirs = readGguf(readFile(join(dir, 'model-q8_0.gguf')));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('writes llama.cpp\'s tensors bit for bit (names and order, ggml dims, types, stacked experts, q/k rope permutation)', () => {
    expect(ours.tensors.map((t) => t.name)).toEqual(theirs.tensors.map((t) => t.name));
    for (const t of theirs.tensors) {
      const u = ours.tensors.find((x) => x.name === t.name)!;
      expect([u.dims, u.dtype], t.name).toEqual([t.dims, t.dtype]);
      expect(Buffer.compare(Buffer.from(u.data), Buffer.from(t.data)), t.name).toBe(0);
    }
  });

  it('writes the model metadata llama.cpp\'s converter writes', () => {
    for (const [key, v] of theirs.metadata) {
      if (key.startsWith('tokenizer.') || key === 'general.name' || key.endsWith('.context_length')) continue;
      expect(ours.metadata.get(key), key).toEqual(v);
    }
  });
});

describe('rope permutation', () => {
  it('rope permutation moves whole rows: rotate-half pairs (j, j+hd/2) become adjacent rows', () => {
    const rows = 8; // 2 heads of 4
    const data = Uint8Array.from({ length: rows * 3 }, (_, i) => Math.floor(i / 3));
    const permuted = ropePermuteRows(data, rows, 2);
    expect([...permuted].filter((_, i) => i % 3 === 0)).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    // heads of 8, where the permutation is not its own inverse: 'from-gguf' undoes 'to-gguf'
    const wide = Uint8Array.from({ length: 16 * 3 }, (_, i) => Math.floor(i / 3));
    expect(ropePermuteRows(ropePermuteRows(wide, 16, 2), 16, 2)).not.toEqual(wide);
    expect(ropePermuteRows(ropePermuteRows(wide, 16, 2), 16, 2, 'from-gguf')).toEqual(wide);
  });
});

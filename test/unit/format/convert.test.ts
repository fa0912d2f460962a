// The converter on the Mixtral fixture: a valid moe-edge/1 folder laid out as design.md §3 says, tensors that
// decode back to the checkpoint's values, tokenizer metadata carried over, sharded checkpoints read, and the
// committed default model intact. Every architecture's tensors against llama.cpp's GGUF: convert-architectures.test.ts.
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { architectureFromHf, hfTensorSources } from '../../../tools/convert/hf-config';
import { objectNames, tensorNames, type Manifest } from '../../../src/format/manifest';
import { decodeTensor, dequantize, QK, quantize, roundF16 } from '../../../src/format/quant';
import { encodeSafetensors, parseSafetensors, type SafetensorsFile } from '../../../tools/convert/safetensors';
import { readManifest, readVerified } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { chooseDtype, convert } from '../../../tools/convert';
import { sharedPath } from '../../shared-dir';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURE = sharedPath('fixtures', 'mixtral');
const quiet = { warn: () => {} };

let tmp: string;
let st: SafetensorsFile;
const models: Record<string, Manifest> = {};

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'moe-edge-convert-'));
  st = parseSafetensors(new Uint8Array(await readFile(join(FIXTURE, 'model.safetensors'))));
  for (const quant of ['f32', 'q8_0'] as const) {
    models[quant] = (await convert({ inDir: FIXTURE, outDir: join(tmp, quant), quant, ...quiet })).manifest;
  }
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

/** Every tensor's bytes, read back through the verified path. */
async function tensorBytes(dir: string, m: Manifest): Promise<Map<string, Uint8Array>> {
  const src = fsSource(dir);
  const objects = new Map<string, Uint8Array>();
  for (const name of Object.keys(m.objects)) objects.set(name, await readVerified(src, m, name));
  return new Map(Object.entries(m.tensors).map(([name, t]) => [name, objects.get(t.object)!.subarray(t.offset, t.offset + t.bytes)]));
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

describe('architectureFromHf', () => {
  it('normalises the mixtral config', async () => {
    const a = architectureFromHf(JSON.parse(await readFile(join(FIXTURE, 'config.json'), 'utf8')));
    expect(models.f32.architecture).toEqual(a);
    expect(a).toMatchObject({
      modelType: 'mixtral', vocabSize: 260, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16,
      expertFfnSize: 32, numExperts: 8, topK: 2, normTopKProb: true, rmsNormEps: 1e-5, ropeTheta: 1e6, ropeLayout: 'neox',
      contextLength: 128, tieWordEmbeddings: false, qkvBias: false, qkNorm: 'none', sharedExpertFfnSize: 0,
    });
  });

  it('derives head_dim, caps the context at a sliding window and refuses what it cannot run', async () => {
    const config = JSON.parse(await readFile(join(FIXTURE, 'config.json'), 'utf8'));
    expect(architectureFromHf(config).headDim).toBe(16);
    expect(architectureFromHf({ ...config, head_dim: undefined, num_attention_heads: 8, num_key_value_heads: 8 }).headDim).toBe(8);
    expect(architectureFromHf({ ...config, sliding_window: 64 }).contextLength).toBe(64);
    expect(() => architectureFromHf({ ...config, model_type: 'llama' })).toThrow(/model_type "llama" is not supported/);
    expect(() => architectureFromHf({ ...config, rope_scaling: { type: 'yarn', factor: 4 } })).toThrow(/rope scaling/);
    expect(() => architectureFromHf({ ...config, num_experts_per_tok: 9 })).toThrow(/exceeds the 8 experts/);
    expect(() => architectureFromHf({ ...config, hidden_size: undefined })).toThrow(/hidden_size is missing/);
  });
});

describe('convert (mixtral fixture)', () => {
  it('writes the objects of design.md §3 and nothing else', () => {
    for (const m of Object.values(models)) {
      const experts = Array.from({ length: 16 }, (_, i) => objectNames.expert(i >> 3, i & 7));
      expect(Object.keys(m.objects).sort()).toEqual(['trunk.bin', ...experts].sort());
      expect(m.tokenizer).toBeNull();
      expect(m.generation).toMatchObject({ bosTokenId: 1, eosTokenIds: [2], addBos: false });
      for (let l = 0; l < 2; l++) {
        for (const t of ['attnNorm', 'attnQ', 'attnK', 'attnV', 'attnOutput', 'ffnNorm', 'router'] as const) expect(m.tensors[tensorNames[t](l)].object).toBe('trunk.bin');
        for (let e = 0; e < 8; e++) {
          const inObject = Object.entries(m.tensors).filter(([, t]) => t.object === objectNames.expert(l, e)).map(([n]) => n);
          expect(inObject).toEqual([tensorNames.expertGate(l, e), tensorNames.expertUp(l, e), tensorNames.expertDown(l, e)]);
        }
      }
      for (const t of [tensorNames.tokenEmbedding, tensorNames.outputNorm, tensorNames.output]) expect(m.tensors[t].object).toBe('trunk.bin');
      expect(Object.keys(m.tensors)).toHaveLength(1 + 2 * (7 + 24) + 2);
    }
  });

  it('places tensors 64-byte aligned, without overlap, inside their objects', () => {
    for (const m of Object.values(models)) {
      const byObject = new Map<string, Array<[number, number]>>();
      for (const t of Object.values(m.tensors)) {
        expect(t.offset % 64).toBe(0);
        byObject.set(t.object, [...(byObject.get(t.object) ?? []), [t.offset, t.offset + t.bytes]]);
      }
      for (const [object, spans] of byObject) {
        spans.sort((a, b) => a[0] - b[0]);
        spans.forEach(([begin], i) => i > 0 && expect(begin).toBeGreaterThanOrEqual(spans[i - 1][1]));
        expect(spans.at(-1)![1]).toBe(m.objects[object].bytes);
      }
    }
  });

  it('keeps norms and routers f32 and quantises every matrix (llama.cpp policy)', () => {
    const m = models.q8_0;
    expect(m.quant).toEqual({ trunk: 'q8_0', experts: 'q8_0' });
    for (const [name, t] of Object.entries(m.tensors)) {
      const keep = t.shape.length === 1 || name.endsWith('ffn_gate_inp');
      expect([name, t.dtype]).toEqual([name, keep ? 'f32' : 'q8_0']);
    }
  });

  it('f32: every tensor equals the checkpoint exactly', async () => {
    const bytes = await tensorBytes(join(tmp, 'f32'), models.f32);
    for (const src of hfTensorSources(models.f32.architecture)) {
      const t = models.f32.tensors[src.name];
      expect(t.shape).toEqual([...st.tensors.get(src.hf)!.shape]);
      expect(decodeTensor(t.dtype, bytes.get(src.name)!, numel(t.shape))).toEqual(st.float32(src.hf));
    }
  });

  it('q8_0: every tensor decodes to the checkpoint within its block error', async () => {
    const bytes = await tensorBytes(join(tmp, 'q8_0'), models.q8_0);
    for (const src of hfTensorSources(models.q8_0.architecture)) {
      const t = models.q8_0.tensors[src.name];
      const want = st.float32(src.hf);
      const got = decodeTensor(t.dtype, bytes.get(src.name)!, want.length);
      if (t.dtype === 'f32') {
        expect(got).toEqual(want);
        continue;
      }
      let worst = -Infinity; // largest excess over the bound
      for (let b = 0; b < want.length / QK; b++) {
        const block = want.subarray(b * QK, (b + 1) * QK);
        const amax = Math.max(...block.map(Math.abs));
        // half a quant step, plus the f16 rounding of the scale times the largest quant
        const bound = (amax / 127) * (0.5 + 127 * 2 ** -11) + 1e-12;
        for (let j = 0; j < QK; j++) worst = Math.max(worst, Math.abs(got[b * QK + j] - block[j]) - bound);
      }
      expect(worst, src.name).toBeLessThanOrEqual(0);
    }
  });

  it('honours separate trunk and expert formats', async () => {
    const out = join(tmp, 'mixed');
    const { manifest: m } = await convert({ inDir: FIXTURE, outDir: out, quant: 'q8_0', trunkQuant: 'f16', expertQuant: 'q4_0', name: 'mixed', ...quiet });
    expect([m.name, m.quant]).toEqual(['mixed', { trunk: 'f16', experts: 'q4_0' }]);
    const bytes = await tensorBytes(out, m);
    for (const src of hfTensorSources(m.architecture)) {
      const t = m.tensors[src.name];
      const want = st.float32(src.hf);
      expect(t.dtype).toBe(src.kind !== 'matrix' ? 'f32' : src.expert ? 'q4_0' : 'f16');
      const got = decodeTensor(t.dtype, bytes.get(src.name)!, want.length);
      if (t.dtype === 'f16') expect(got).toEqual(want.map(roundF16));
      if (t.dtype === 'q4_0') expect(got).toEqual(dequantize(quantize('q4_0', want)));
    }
  });

  it('falls back to f16 with a warning when rows are not whole 32-blocks', () => {
    const warnings: string[] = [];
    const src = { name: 'blk.0.attn_q', hf: 'x', shape: [64, 48], kind: 'matrix' as const };
    expect(chooseDtype(src, 'q4_0', (w) => warnings.push(w))).toBe('f16');
    expect(warnings[0]).toMatch(/blk\.0\.attn_q: 48 columns are not a multiple of 32/);
    expect(chooseDtype({ ...src, shape: [64, 64] }, 'q4_0', (w) => warnings.push(w))).toBe('q4_0');
    expect(chooseDtype({ ...src, kind: 'router' }, 'q8_0', (w) => warnings.push(w))).toBe('f32');
    expect(warnings).toHaveLength(1);
  });

  it('reads a sharded checkpoint through model.safetensors.index.json', async () => {
    const inDir = join(tmp, 'sharded-in');
    await mkdir(inDir);
    await copyFile(join(FIXTURE, 'config.json'), join(inDir, 'config.json'));
    const names = [...st.tensors.keys()];
    const shards = [names.slice(0, 30), names.slice(30)];
    const weightMap: Record<string, string> = {};
    for (const [i, part] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeFile(join(inDir, file), encodeSafetensors(part.map((n) => ({ name: n, shape: [...st.tensors.get(n)!.shape], data: st.float32(n) }))));
      for (const n of part) weightMap[n] = file;
    }
    await writeFile(join(inDir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const { manifest } = await convert({ inDir, outDir: join(tmp, 'sharded-out'), quant: 'f32', name: 'mixtral', ...quiet });
    expect(manifest.objects).toEqual(models.f32.objects);
  });

  it('carries tokenizer files, chat template and generation defaults over', async () => {
    const inDir = join(tmp, 'tok-in');
    await mkdir(inDir);
    for (const f of ['config.json', 'model.safetensors']) await copyFile(join(FIXTURE, f), join(inDir, f));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(join(ROOT, 'models/default', f), join(inDir, f));
    await writeFile(join(inDir, 'generation_config.json'), JSON.stringify({ eos_token_id: [2, 7], temperature: 0.5, top_p: 0.9, do_sample: true }));
    const out = join(tmp, 'tok-out');
    const { manifest: m } = await convert({ inDir, outDir: out, quant: 'q8_0', ...quiet });
    expect(m.tokenizer).toEqual({ json: 'tokenizer.json', config: 'tokenizer_config.json' });
    const tokConfig = JSON.parse(await readFile(join(inDir, 'tokenizer_config.json'), 'utf8'));
    expect(m.chatTemplate).toBe(tokConfig.chat_template);
    expect(m.generation).toEqual({ bosTokenId: 1, eosTokenIds: [2, 7], addBos: true, temperature: 0.5, topP: 0.9, maxTokens: 256 });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      expect(await readVerified(fsSource(out), m, f)).toEqual(new Uint8Array(await readFile(join(inDir, f))));
    }
  });

  it('refuses a checkpoint that does not match its config', async () => {
    const inDir = join(tmp, 'broken-in');
    await mkdir(inDir);
    await copyFile(join(FIXTURE, 'config.json'), join(inDir, 'config.json'));
    const keep = [...st.tensors.keys()].filter((n) => n !== 'model.layers.1.block_sparse_moe.experts.7.w2.weight');
    await writeFile(join(inDir, 'model.safetensors'), encodeSafetensors(keep.map((n) => ({ name: n, shape: [...st.tensors.get(n)!.shape], data: st.float32(n) }))));
    await expect(convert({ inDir, outDir: join(tmp, 'broken-out'), quant: 'f32', ...quiet })).rejects.toThrow(/experts\.7\.w2\.weight is missing/);
  });
});

describe('models/default (the embedded model)', () => {
  it('is a valid q8_0 model whose every object matches its digest', async () => {
    const src = fsSource(join(ROOT, 'models/default'));
    const m = await readManifest(src);
    expect([m.name, m.quant.trunk, m.quant.experts, m.architecture.modelType]).toEqual(['default', 'q8_0', 'q8_0', 'mixtral']);
    let total = 0;
    for (const name of Object.keys(m.objects)) total += (await readVerified(src, m, name)).length;
    expect(total).toBeLessThan(25 * 2 ** 20); // issue 3: the default model stays under ~25 MB
  });

  it('has a tokenizer that covers the vocabulary and round-trips UTF-8', async () => {
    const src = fsSource(join(ROOT, 'models/default'));
    const m = await readManifest(src);
    const text = async (name: string): Promise<object> => JSON.parse(new TextDecoder().decode(await readVerified(src, m, name)));
    const tok = new Tokenizer(await text(m.tokenizer!.json), await text(m.tokenizer!.config));
    expect(tok.get_vocab(true).size).toBe(m.architecture.vocabSize);
    for (const s of ['Hello, world!', 'the end\n', 'Grüße 🙂 — 漢字']) expect(tok.decode(tok.encode(s, { add_special_tokens: false }).ids)).toBe(s);
    expect(tok.encode('hi').ids[0]).toBe(m.generation.bosTokenId);
    expect(m.generation.eosTokenIds).toEqual([2, tok.token_to_id('<|end|>')]);
  });
});

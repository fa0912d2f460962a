// The converter on every llama.cpp fixture (mixtral, qwen2_moe, olmoe, granitemoe): the config becomes the
// right flags, every tensor equals the checkpoint (GraniteMoe's merged experts split per expert), and the
// q8_0 model holds, tensor by tensor, the very bytes of llama.cpp's own Q8_0 GGUF.
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { architectureFromHf, hfElementRange, hfTensorSources, SUPPORTED_MODEL_TYPES, type TensorSource } from '../../../tools/convert/hf-config';
import { objectNames, type Architecture, type Manifest } from '../../../src/format/manifest';
import { decodeTensor } from '../../../src/format/quant';
import { parseSafetensors, type SafetensorsFile } from '../../../tools/convert/safetensors';
import { readVerified } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { convert } from '../../../tools/convert';
import { sharedPath } from '../../shared-dir';
import { ourRow, permutedRow, readGguf } from './gguf-rows';

const quiet = { warn: () => {} };

/** What each fixture's config.json must turn into (its README lists what it exercises). */
const EXPECTED: Record<string, Partial<Architecture>> = {
  mixtral: { modelType: 'mixtral', numKvHeads: 2, normTopKProb: true, ropeTheta: 1e6, qkvBias: false, qkNorm: 'none', sharedExpertFfnSize: 0 },
  qwen2_moe: {
    modelType: 'qwen2_moe', numKvHeads: 2, headDim: 16, expertFfnSize: 32, normTopKProb: false, ropeTheta: 1e6,
    qkvBias: true, sharedExpertFfnSize: 64, sharedExpertGate: true, qkNorm: 'none', tieWordEmbeddings: false,
  },
  olmoe: { modelType: 'olmoe', numKvHeads: 4, normTopKProb: false, ropeTheta: 1e4, qkNorm: 'full', qkvBias: false, sharedExpertFfnSize: 0 },
  granitemoe: {
    modelType: 'granitemoe', numKvHeads: 2, expertFfnSize: 32, routerTopKBeforeSoftmax: true, tieWordEmbeddings: true,
    embeddingMultiplier: 2, attentionMultiplier: 0.0625, residualMultiplier: 0.5, logitsScaling: 2.5, qkNorm: 'none',
  },
};

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Every tensor's bytes, read back through the verified path. */
async function tensorBytes(dir: string, m: Manifest): Promise<Map<string, Uint8Array>> {
  const src = fsSource(dir);
  const objects = new Map<string, Uint8Array>();
  for (const name of Object.keys(m.objects)) objects.set(name, await readVerified(src, m, name));
  return new Map(Object.entries(m.tensors).map(([name, t]) => [name, objects.get(t.object)!.subarray(t.offset, t.offset + t.bytes)]));
}

/** The checkpoint values a canonical tensor must hold (its slice, for a merged tensor). */
function checkpointValues(st: SafetensorsFile, src: TensorSource): Float32Array {
  const { start, count } = hfElementRange(src);
  return st.float32(src.hf).subarray(start, start + count);
}

it('supports the architectures the README lists', () => {
  expect([...SUPPORTED_MODEL_TYPES].sort()).toEqual(['granitemoe', 'mixtral', 'olmoe', 'qwen2_moe', 'qwen3_moe']);
});

describe.each(Object.keys(EXPECTED))('convert the %s fixture', (arch) => {
  const dir = sharedPath('fixtures', arch);
  let tmp: string;
  let st: SafetensorsFile;
  const models: Record<string, Manifest> = {};

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), `moe-edge-convert-${arch}-`));
    st = parseSafetensors(new Uint8Array(await readFile(join(dir, 'model.safetensors'))));
    for (const quant of ['f32', 'q8_0'] as const) models[quant] = (await convert({ inDir: dir, outDir: join(tmp, quant), quant, ...quiet })).manifest;
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('turns config.json into the architecture flags', async () => {
    const a = architectureFromHf(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')));
    expect(models.f32.architecture).toEqual(a);
    expect(a).toMatchObject({ vocabSize: 260, hiddenSize: 64, numLayers: 2, numHeads: 4, numExperts: 8, topK: 2, rmsNormEps: 1e-5, contextLength: 128, ...EXPECTED[arch] });
  });

  it('uses every checkpoint tensor and puts each expert in its own object', async () => {
    const m = models.f32;
    const sources = hfTensorSources(m.architecture);
    expect(new Set(sources.map((s) => s.hf))).toEqual(new Set(st.tensors.keys()));
    const experts = Array.from({ length: 16 }, (_, i) => objectNames.expert(i >> 3, i & 7));
    expect(Object.keys(m.objects).sort()).toEqual(['trunk.bin', ...experts].sort());
    for (const s of sources) expect(m.tensors[s.name].object).toBe(s.expert ? objectNames.expert(s.expert.layer, s.expert.expert) : 'trunk.bin');
  });

  it('f32: every tensor equals the checkpoint exactly (merged experts sliced per expert)', async () => {
    const bytes = await tensorBytes(join(tmp, 'f32'), models.f32);
    for (const src of hfTensorSources(models.f32.architecture)) {
      const t = models.f32.tensors[src.name];
      expect(t.shape).toEqual(src.shape);
      expect(decodeTensor(t.dtype, bytes.get(src.name)!, numel(t.shape)), src.name).toEqual(checkpointValues(st, src));
    }
  });

  it('keeps norms, biases and routers (shared-expert gate included) f32 and quantises every matrix', () => {
    for (const [name, t] of Object.entries(models.q8_0.tensors)) {
      const keep = t.shape.length === 1 || /ffn_gate_inp(_shexp)?$/.test(name);
      expect([name, t.dtype]).toEqual([name, keep ? 'f32' : 'q8_0']);
    }
  });

  it("matches llama.cpp's Q8_0 GGUF tensor by tensor: same f32 tensors, same scales, same quants", async () => {
    const gguf = readGguf(new Uint8Array(await readFile(join(dir, 'model-q8_0.gguf'))));
    const map = JSON.parse(await readFile(join(dir, 'gguf_tensor_map.json'), 'utf8')) as {
      tensors: Array<{ gguf: string; transform: string; hf: string[] }>;
    };
    const m = models.q8_0;
    const a = m.architecture;
    const sources = hfTensorSources(a);
    const bytes = await tensorBytes(join(tmp, 'q8_0'), m);
    const compared = new Set<string>();
    let quantDiffs = 0;
    for (const entry of map.tensors) {
      const g = gguf.get(entry.gguf)!;
      const heads = entry.transform === 'rope-permute(n_head)' ? a.numHeads : entry.transform === 'rope-permute(n_head_kv)' ? a.numKvHeads : 0;
      // GraniteMoe: ffn_gate_exps / ffn_up_exps are the first / second half of each expert's input_linear
      const half = entry.transform.startsWith('input_linear[:, :I') ? 'first' : entry.transform.startsWith('input_linear[:, I:') ? 'second' : undefined;
      entry.hf.forEach((hf, k) => {
        const parts = sources.filter((s) => s.hf === hf && (half === undefined || (s.slice!.rowStart === 0) === (half === 'first')));
        expect(parts.length, `${entry.gguf} <- ${hf}`).toBeGreaterThan(0);
        for (const src of parts) {
          const t = m.tensors[src.name];
          const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]];
          // stacked experts: the k-th HF tensor, or the slice's expert, starts at row k * rows of the GGUF tensor
          const base = (src.slice ? src.slice.block : k) * rows;
          expect(g.cols).toBe(cols);
          for (let r = 0; r < rows; r++) {
            // llama.cpp stores q/k rows permuted for its RoPE; rows are quantised independently
            const theirs = g.row(base + (heads ? permutedRow(r, rows / heads) : r));
            const ours = ourRow(t.dtype, bytes.get(src.name)!, rows, cols, r);
            if (t.dtype === 'f32') {
              expect(ours, src.name).toEqual(theirs);
              continue;
            }
            expect(ours.subarray(cols), src.name).toEqual(theirs.subarray(cols)); // f16 scales
            const [x, y] = [new Int8Array(ours.buffer, ours.byteOffset, cols), new Int8Array(theirs.buffer, theirs.byteOffset, cols)];
            for (let i = 0; i < cols; i++) if (x[i] !== y[i]) quantDiffs++;
          }
          compared.add(src.name);
        }
      });
    }
    expect([...compared].sort()).toEqual(Object.keys(m.tensors).sort());
    // weights are quantized as ggml writes model files (quantize_row_q8_0_ref: 1/d, ties away from zero)
    expect(quantDiffs).toBe(0);
  });
});

describe('architectureFromHf refuses what the forward pass cannot run', () => {
  const config = async (arch: string) => JSON.parse(await readFile(join(sharedPath('fixtures', arch), 'config.json'), 'utf8'));

  it('qwen2_moe: dense layers, an unused sliding window, a missing shared expert', async () => {
    const c = await config('qwen2_moe');
    expect(() => architectureFromHf({ ...c, mlp_only_layers: [0] })).toThrow(/mlp_only_layers/);
    expect(() => architectureFromHf({ ...c, decoder_sparse_step: 2 })).toThrow(/decoder_sparse_step/);
    // Qwen1.5-MoE ships sliding_window 32768 with use_sliding_window false: the window does not apply
    expect(architectureFromHf({ ...c, use_sliding_window: false, sliding_window: 32 }).contextLength).toBe(128);
    expect(architectureFromHf({ ...c, use_sliding_window: true, sliding_window: 32 }).contextLength).toBe(32);
    expect(architectureFromHf({ ...c, shared_expert_intermediate_size: 0 })).toMatchObject({ sharedExpertFfnSize: 0, sharedExpertGate: false });
  });

  it('olmoe: q/k/v clipping and attention biases', async () => {
    const c = await config('olmoe');
    expect(() => architectureFromHf({ ...c, clip_qkv: 8 })).toThrow(/clip_qkv/);
    expect(() => architectureFromHf({ ...c, attention_bias: true })).toThrow(/attention_bias/);
  });

  it('granitemoe: neutral multipliers when absent (HF defaults, attention scale 1.0), other activations refused', async () => {
    const c = await config('granitemoe');
    const bare = { ...c, embedding_multiplier: undefined, attention_multiplier: undefined, residual_multiplier: undefined, logits_scaling: undefined };
    expect(architectureFromHf(bare)).toMatchObject({ embeddingMultiplier: 1, attentionMultiplier: 1, residualMultiplier: 1, logitsScaling: 1 });
    expect(() => architectureFromHf({ ...c, hidden_act: 'gelu' })).toThrow(/hidden_act "gelu"/);
  });

  it('refuses a checkpoint whose merged expert tensor does not fit the config', async () => {
    const dir = sharedPath('fixtures', 'granitemoe');
    const inDir = await mkdtemp(join(tmpdir(), 'moe-edge-granite-bad-'));
    try {
      await copyFile(join(dir, 'model.safetensors'), join(inDir, 'model.safetensors'));
      await writeFile(join(inDir, 'config.json'), JSON.stringify({ ...(await config('granitemoe')), intermediate_size: 64 }));
      await expect(convert({ inDir, outDir: join(inDir, 'out'), quant: 'f32', ...quiet }))
        .rejects.toThrow(/layers\.0\.block_sparse_moe\.input_linear\.weight has shape \[8,64,64\], expected \[8,128,64\]/);
    } finally {
      await rm(inDir, { recursive: true, force: true });
    }
  });
});

// A synthetic moe-edge/1 model for the split benchmark: random q8_0 weights at real expert sizes (Mixtral
// 8x7B's 4096x14336 is too big for this machine; the default 2048x5632 expert is 35 MB, ~1.5-2 ms of WASM
// compute per token), so the hot experts' compute is comparable to a round trip. Written once to a cache
// folder and reused; its numbers are noise, its timings are not.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANIFEST_FORMAT, objectNames, tensorNames, type Manifest, type TensorEntry } from '../../src/format/manifest';
import { f32ToF16, shardBytes, type DType } from '../../src/format/quant';
import { ObjectPacker } from '../../tools/convert/pack';

export interface BenchModelDims {
  hidden: number;
  ffn: number;
  layers: number;
  experts: number;
  topK: number;
  heads: number;
  kvHeads: number;
  vocab: number;
}

export const DEFAULT_DIMS: BenchModelDims = { hidden: 2048, ffn: 5632, layers: 2, experts: 8, topK: 2, heads: 16, kvHeads: 8, vocab: 512 };

/** xorshift32: fast, seeded; quality does not matter for timing weights. */
function filler(seed: number): (out: Uint32Array) => void {
  let s = seed >>> 0 || 1;
  return (out) => {
    for (let i = 0; i < out.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i] = s >>> 0;
    }
  };
}

/** Folder of the model with these dims, written on first use. */
export async function benchModel(dims: BenchModelDims = DEFAULT_DIMS, log: (l: string) => void = () => {}): Promise<string> {
  const name = `moe-edge-bench-split-h${dims.hidden}-i${dims.ffn}-l${dims.layers}-e${dims.experts}-k${dims.topK}`;
  const dir = join(tmpdir(), name);
  try {
    await readFile(join(dir, 'manifest.json'));
    return dir;
  } catch {
    // not there yet
  }
  log(`writing synthetic model ${dir} ...`);
  const { hidden: H, ffn: I, layers: L, experts: E, heads, kvHeads, vocab } = dims;
  const hd = H / heads;
  let seed = 1;
  const tensors: Record<string, TensorEntry> = {};
  const objects: Manifest['objects'] = {};

  const q8 = (rows: number, cols: number): Uint8Array => {
    const n = rows * cols;
    const out = new Uint8Array(shardBytes('q8_0', n));
    const words = new Uint32Array(out.buffer, 0, n / 4);
    filler(seed++)(words);
    for (let i = 0; i < n; i++) if (out[i] === 0x80) out[i] = 0x81; // int8 -128 is not a ggml quant
    const d = new Uint16Array(out.buffer, n, n / 32);
    d.fill(f32ToF16(0.0004));
    return out;
  };
  const f32 = (n: number, value: (i: number) => number): Uint8Array => new Uint8Array(Float32Array.from({ length: n }, (_, i) => value(i)).buffer);
  const add = (p: ObjectPacker, object: string, name: string, dtype: DType, shape: number[], bytes: Uint8Array) => {
    tensors[name] = { object, offset: p.add(bytes), bytes: bytes.length, dtype, shape };
  };
  const write = async (object: string, p: ObjectPacker) => {
    const bytes = p.finish();
    await mkdir(join(dir, object, '..'), { recursive: true });
    await writeFile(join(dir, object), bytes);
    objects[object] = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  };

  const t = tensorNames;
  const trunk = new ObjectPacker();
  const T = objectNames.trunk;
  add(trunk, T, t.tokenEmbedding, 'q8_0', [vocab, H], q8(vocab, H));
  add(trunk, T, t.outputNorm, 'f32', [H], f32(H, () => 1));
  add(trunk, T, t.output, 'q8_0', [vocab, H], q8(vocab, H));
  const rand = filler(12345);
  const word = new Uint32Array(1);
  const uniform = () => (rand(word), word[0]! / 2 ** 32 - 0.5);
  for (let l = 0; l < L; l++) {
    add(trunk, T, t.attnNorm(l), 'f32', [H], f32(H, () => 1));
    add(trunk, T, t.attnQ(l), 'q8_0', [heads * hd, H], q8(heads * hd, H));
    add(trunk, T, t.attnK(l), 'q8_0', [kvHeads * hd, H], q8(kvHeads * hd, H));
    add(trunk, T, t.attnV(l), 'q8_0', [kvHeads * hd, H], q8(kvHeads * hd, H));
    add(trunk, T, t.attnOutput(l), 'q8_0', [H, heads * hd], q8(H, heads * hd));
    add(trunk, T, t.ffnNorm(l), 'f32', [H], f32(H, () => 1));
    add(trunk, T, t.router(l), 'f32', [E, H], f32(E * H, () => (uniform() * 4) / Math.sqrt(H)));
  }
  await write(T, trunk);
  for (let l = 0; l < L; l++) {
    for (let e = 0; e < E; e++) {
      const p = new ObjectPacker();
      const o = objectNames.expert(l, e);
      add(p, o, t.expertGate(l, e), 'q8_0', [I, H], q8(I, H));
      add(p, o, t.expertUp(l, e), 'q8_0', [I, H], q8(I, H));
      add(p, o, t.expertDown(l, e), 'q8_0', [H, I], q8(H, I));
      await write(o, p);
    }
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    name,
    architecture: {
      modelType: 'mixtral', vocabSize: vocab, hiddenSize: H, numLayers: L, numHeads: heads, numKvHeads: kvHeads, headDim: hd,
      expertFfnSize: I, numExperts: E, topK: dims.topK, normTopKProb: true, rmsNormEps: 1e-5, ropeTheta: 1e6, ropeLayout: 'neox',
      contextLength: 1024, tieWordEmbeddings: false, qkvBias: false, qkNorm: 'none', sharedExpertFfnSize: 0, sharedExpertGate: false,
      embeddingMultiplier: 1, residualMultiplier: 1, logitsScaling: 1, routerTopKBeforeSoftmax: false,
    },
    quant: { trunk: 'q8_0', experts: 'q8_0' },
    objects,
    tensors,
    tokenizer: null,
    chatTemplate: null,
    generation: { bosTokenId: null, eosTokenIds: [], addBos: false, temperature: 0, topP: 1, maxTokens: 64 },
  };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  log(`wrote ${dir}`);
  return dir;
}

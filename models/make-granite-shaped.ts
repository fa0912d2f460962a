// A granite-3.x-1b-a400m-shaped model with seeded random weights (issues 13, 14): no real weights can be
// downloaded here, so benchmarks and memory checks run on this; --layers N gives a scaled-down twin of the same
// widths for tests. Written through the converter's own writer, so it is an ordinary moe-edge/1 folder.
//   npm run make:granite -- --quant q4_0|q8_0 [--layers N] [--out dir] [--seed S] [--config file]
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { convert, type ConvertInput, type ConvertResult } from '../tools/convert';
import { architectureFromHf, hfTensorSources, type TensorSource } from '../tools/convert/hf-config';
import { readTokenizerMeta, TOKENIZER_CONFIG, TOKENIZER_JSON } from '../tools/convert/tokenizer-meta';
import { tensorNames as T } from '../src/format/manifest';
import { encodeTensor, quantBytes, scaleCount, shardBytes, type DType } from '../src/format/quant';
import { seededRandom } from '../src/engine/sampler';
import { checkTokenizer, graniteTokenizer } from './granite-tokenizer';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const GRANITE_CONFIG = join(ROOT, 'models/configs/granite-3.0-1b-a400m.json');
export const DEFAULT_SEED = 20261203;
const QUANTS = ['q4_0', 'q8_0'] as const;
export type GraniteQuant = (typeof QUANTS)[number];

export interface GraniteShapedOptions {
  quant: GraniteQuant;
  /** overrides num_hidden_layers (same widths); default: the config's */
  layers?: number;
  outDir?: string;
  seed?: number;
  /** HF config.json to take the architecture from; default: granite-3.0-1b-a400m */
  config?: string;
  onProgress?: (done: number, total: number) => void;
}

/** The default output folder: .cache/models/granite-shaped-<quant>[-<N>l] (gitignored). */
export function defaultOutDir(quant: GraniteQuant, layers?: number): string {
  return join(ROOT, '.cache/models', modelName(quant, layers));
}

function modelName(quant: GraniteQuant, layers?: number): string {
  return `granite-shaped-${quant}${layers === undefined ? '' : `-${layers}l`}`;
}

/**
 * Standard deviation of each tensor's normal(0, std) weights. The config's initializer_range (0.02) everywhere
 * lets the 12x-scaled token embedding dominate the residual stream, and with tied embeddings every greedy step
 * then repeats its input token. A smaller embedding and wider projections keep the residual branches in
 * charge, so the logits depend on context and greedy text varies (checked at 2 and 24 layers; every branch
 * reads an RMS-normed input and adds 0.22x its output, so the stream grows slowly and the logits stay finite).
 */
export function weightStd(src: TensorSource, init: number): number {
  if (src.name === T.tokenEmbedding) return init / 10;
  if (/\.attn_[qk]$/.test(src.name)) return init * 5;
  if (/\.ffn_down$/.test(src.name)) return init * 7.5;
  return init * 2.5;
}

/** FNV-1a of the tensor name mixed with the seed: each tensor has its own stream, independent of order and layer count. */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

// sd of the sum of the four bytes of a uniform 32-bit word: sqrt(4 * (256^2 - 1) / 12)
const BYTE_SUM_SD = Math.sqrt((4 * (256 * 256 - 1)) / 12);

/**
 * Approximately normal(0, std) values: the centred sum of the four bytes of one uniform word (Irwin-Hall, cut
 * at 3.5 sd). One PRNG call and no logarithm per value: the full model draws 1.3 billion of them.
 */
function fillNormal(out: Float32Array, rand: () => number, std: number): void {
  const scale = std / BYTE_SUM_SD;
  for (let i = 0; i < out.length; i++) {
    const w = rand() * 4294967296; // the generator's 32-bit word, exactly
    out[i] = ((w & 255) + ((w >>> 8) & 255) + ((w >>> 16) & 255) + (w >>> 24) - 510) * scale;
  }
}

const CHUNK_ELEMENTS = 1 << 20;

/**
 * A (rows, cols) random matrix encoded as `dtype`, a few rows at a time: the bytes of encodeTensor on the whole
 * tensor (blocks never straddle rows), without a 200 MB f32 array for the 49155 x 1024 embedding.
 */
export function encodeRandomMatrix(dtype: DType, rows: number, cols: number, std: number, rand: () => number): Uint8Array {
  const n = rows * cols;
  const out = new Uint8Array(shardBytes(dtype, n));
  const scalesAt = quantBytes(dtype, n);
  const chunkRows = Math.max(1, Math.floor(CHUNK_ELEMENTS / cols));
  const buf = new Float32Array(chunkRows * cols);
  for (let r = 0; r < rows; r += chunkRows) {
    const values = buf.subarray(0, Math.min(chunkRows, rows - r) * cols);
    fillNormal(values, rand, std);
    const bytes = encodeTensor(dtype, values);
    const qb = quantBytes(dtype, values.length);
    out.set(bytes.subarray(0, qb), quantBytes(dtype, r * cols));
    out.set(bytes.subarray(qb), scalesAt + scaleCount(dtype, r * cols) * 2);
  }
  return out;
}

/** Writes the model folder; same options -> byte-identical objects. */
export async function makeGraniteShaped(opts: GraniteShapedOptions): Promise<ConvertResult & { outDir: string; tokenizer: { learned: number; filled: number } }> {
  if (!QUANTS.includes(opts.quant)) throw new Error(`--quant must be one of ${QUANTS.join(', ')}, got ${opts.quant}`);
  const seed = opts.seed ?? DEFAULT_SEED;
  const config = JSON.parse(await readFile(opts.config ?? GRANITE_CONFIG, 'utf8')) as Record<string, unknown>;
  if (opts.layers !== undefined) {
    if (!Number.isInteger(opts.layers) || opts.layers < 1) throw new Error(`--layers takes a positive integer, got ${opts.layers}`);
    config.num_hidden_layers = opts.layers;
  }
  const architecture = architectureFromHf(config); // the converter's own reading of the published config
  const sources = hfTensorSources(architecture);
  const init = typeof config.initializer_range === 'number' ? config.initializer_range : 0.02;
  const outDir = resolve(opts.outDir ?? defaultOutDir(opts.quant, opts.layers));

  const tok = graniteTokenizer(architecture.vocabSize, seed);
  checkTokenizer(tok, architecture.vocabSize, ['Hello, world!', 'def f(x):\n    return x + 1\n', 'naïve café 日本語 🙂', '<|start_of_role|>user<|end_of_role|>hi<|end_of_text|>\n']);

  // the tokenizer files go through the converter's reader, as a real granite folder's would
  const tmp = await mkdtemp(join(tmpdir(), 'moe-edge-granite-'));
  try {
    const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';
    await writeFile(join(tmp, TOKENIZER_JSON), json(tok.json));
    await writeFile(join(tmp, TOKENIZER_CONFIG), json(tok.config));
    await writeFile(join(tmp, 'generation_config.json'), json(tok.generation));
    const meta = await readTokenizerMeta(tmp, config, architecture.vocabSize, (m) => console.warn(`warning: ${m}`));

    let done = 0;
    const input: ConvertInput = {
      name: modelName(opts.quant, opts.layers),
      architecture,
      sources,
      meta,
      keptDtype: () => undefined,
      async encode(src, dtype) {
        opts.onProgress?.(++done, sources.length);
        if (src.kind === 'norm') return encodeTensor('f32', new Float32Array(src.shape[0]).fill(1));
        const rand = seededRandom(tensorSeed(seed, src.name));
        const [rows, cols] = src.shape.length === 2 ? src.shape : [1, src.shape[0]];
        return encodeRandomMatrix(dtype, rows, cols, weightStd(src, init), rand);
      },
      close: async () => {},
    };
    const result = await convert({ inDir: input, outDir, quant: opts.quant });
    return { ...result, outDir, tokenizer: { learned: tok.learned, filled: tok.filled } };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quant: { type: 'string' },
      layers: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      config: { type: 'string' },
    },
    strict: true,
  });
  const quant = values.quant as GraniteQuant;
  if (!QUANTS.includes(quant)) throw new Error('usage: npm run make:granite -- --quant q4_0|q8_0 [--layers N] [--out dir] [--seed S] [--config file]');
  const t0 = performance.now();
  let shown = -1;
  const r = await makeGraniteShaped({
    quant,
    layers: values.layers === undefined ? undefined : Number(values.layers),
    outDir: values.out,
    seed: values.seed === undefined ? undefined : Number(values.seed),
    config: values.config,
    onProgress: (done, total) => {
      const pct = Math.floor((100 * done) / total / 10) * 10;
      if (pct !== shown) process.stderr.write(`${(shown = pct)}% `);
    },
  });
  const a = r.manifest.architecture;
  console.log(
    `\nwrote ${r.outDir}: ${a.numLayers} layers x ${a.numExperts} experts (top-${a.topK}), hidden ${a.hiddenSize}, vocab ${a.vocabSize}, ` +
      `${r.manifest.quant.trunk}, ${Object.keys(r.manifest.objects).length} objects, ${(r.bytes / 2 ** 20).toFixed(1)} MiB, ` +
      `tokenizer merges ${r.tokenizer.learned} learned from seeded words + ${r.tokenizer.filled} filled, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

// HF checkpoint folder or GGUF file -> moe-edge/1 model folder (manifest.json, trunk.bin,
// experts/<layer>/<expert>.bin, tokenizer files). Quantisation follows llama.cpp: matrices take the requested
// format, 1-D tensors and routers stay f32, so q8_0 output compares with llama.cpp's Q8_0 reference logits.
// A GGUF's f32/f16/q8_0/q4_0 tensors are kept as they are unless --quant asks otherwise; its other types
// are dequantized and requantized (to q8_0 by default), with a warning.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { sha256Hex } from '../src/format/digest';
import { architectureFromHf, hfElementRange, hfShape, hfTensorSources, type TensorSource } from './convert/hf-config';
import { MANIFEST_FORMAT, objectNames, parseManifest, type Architecture, type Manifest, type TensorEntry } from '../src/format/manifest';
import { dequantizeGgml } from './convert/ggml-dequant';
import { ggmlToShard, isDType } from './convert/gguf';
import { canQuantizeRows, DTYPES, encodeTensor, shardBytes, type DType } from '../src/format/quant';
import { openCheckpoint } from './convert/checkpoint';
import { isGgufInput, openGgufInput } from './convert/gguf-input';
import { tokenizerFromGguf } from './convert/gguf-tokenizer';
import { ObjectPacker } from './convert/pack';
import { readTokenizerMeta, type TokenizerMeta } from './convert/tokenizer-meta';

export interface ConvertProgress {
  /** tensors written so far, of `total` */
  done: number;
  total: number;
  /** canonical name of the tensor just written */
  tensor: string;
}

export interface ConvertOptions {
  /** an HF checkpoint folder or a .gguf file, or an input already open (a generated model, models/make-granite-shaped.ts) */
  inDir: string | ConvertInput;
  outDir: string;
  /** default format of every matrix; required for HF input, for GGUF input default: keep each tensor's type */
  quant?: DType;
  /** overrides `quant` for trunk matrices (embeddings, attention, output head) */
  trunkQuant?: DType;
  /** overrides `quant` for routed-expert matrices */
  expertQuant?: DType;
  /** model name in the manifest; default: the input folder's name */
  name?: string;
  onProgress?: (p: ConvertProgress) => void;
  /** warnings (fallback formats, unused tensors); default console.warn */
  warn?: (msg: string) => void;
}

export interface ConvertResult {
  manifest: Manifest;
  /** bytes of every object written, manifest excluded */
  bytes: number;
  warnings: string[];
}

// checkpoint entries that are buffers, not weights
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

/** What convert() reads from: the model's architecture, tensors and text metadata, from HF or GGUF. */
export interface ConvertInput {
  name: string;
  architecture: Architecture;
  sources: TensorSource[];
  meta: TokenizerMeta;
  /** the format a matrix takes when neither --quant nor its override names one */
  keptDtype(src: TensorSource): DType | undefined;
  /** one tensor encoded as `dtype` (our shard layout) */
  encode(src: TensorSource, dtype: DType): Promise<Uint8Array>;
  close(): Promise<void>;
}

async function openHfInput(inDir: string, warn: (msg: string) => void): Promise<ConvertInput> {
  const config = JSON.parse(await readFile(join(inDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const architecture = architectureFromHf(config);
  const sources = hfTensorSources(architecture);
  const meta = await readTokenizerMeta(inDir, config, architecture.vocabSize, warn);
  const ckpt = await openCheckpoint(inDir);
  try {
    checkCheckpoint(ckpt, sources, warn);
  } catch (e) {
    await ckpt.close();
    throw e;
  }
  return {
    name: basename(inDir),
    architecture,
    sources,
    meta,
    keptDtype: () => undefined,
    encode: async (src, dtype) => encodeTensor(dtype, await ckpt.read(src.hf, src.slice ? hfElementRange(src) : undefined)),
    close: () => ckpt.close(),
  };
}

async function openGguf(path: string, warn: (msg: string) => void): Promise<ConvertInput> {
  const g = await openGgufInput(path);
  const meta = tokenizerFromGguf(g.header, g.architecture.vocabSize, warn);
  const requantized = new Map<string, number>(); // "q4_K -> q8_0" -> tensors
  return {
    name: g.name,
    architecture: g.architecture,
    sources: g.sources,
    meta,
    // ours as they are; bf16 (wider range, same size) as f16; every other ggml type as q8_0, closest in quality
    keptDtype: (src) => {
      const t = g.typeOf(src);
      return isDType(t) ? t : t === 'bf16' ? 'f16' : 'q8_0';
    },
    async encode(src, dtype) {
      const t = await g.tensor(src);
      const n = t.rows * t.cols;
      if (t.type === dtype && isDType(t.type)) return ggmlToShard(t.type, t.data, n);
      if (!isDType(t.type) || (t.type !== 'f32' && t.type !== 'f16')) {
        const key = `${t.type} -> ${dtype}`;
        requantized.set(key, (requantized.get(key) ?? 0) + 1);
      }
      return encodeTensor(dtype, dequantizeGgml(t.type, t.data, n));
    },
    async close() {
      for (const [what, count] of requantized) {
        const to = what.split(' -> ')[1];
        warn(`${count} tensors converted ${what}: ${to === 'f32' ? 'dequantized exactly' : 'dequantized and requantized, expect small differences from the GGUF\'s own logits'}`);
      }
      await g.close();
    },
  };
}

export async function convert(opts: ConvertOptions): Promise<ConvertResult> {
  const warnings: string[] = [];
  const warn = (msg: string): void => {
    warnings.push(msg);
    (opts.warn ?? console.warn)(msg);
  };
  const outDir = resolve(opts.outDir);
  const trunkQuant = opts.trunkQuant ?? opts.quant;
  const expertQuant = opts.expertQuant ?? opts.quant;
  for (const q of [trunkQuant, expertQuant]) if (q !== undefined && !DTYPES.includes(q)) throw new Error(`unknown quant ${JSON.stringify(q)} (one of ${DTYPES.join(', ')})`);

  const input = typeof opts.inDir === 'string' ? await openInput(resolve(opts.inDir), trunkQuant, expertQuant, warn) : opts.inDir;
  const { architecture, sources, meta } = input;
  try {
    // a folder without manifest.json is not a model: remove it first so a failed run leaves no stale model
    await mkdir(outDir, { recursive: true });
    await rm(join(outDir, objectNames.manifest), { force: true });

    const tensors: Record<string, TensorEntry> = {};
    const objects: Manifest['objects'] = {};
    const used = { trunk: new Set<DType>(), experts: new Set<DType>() };
    let done = 0;
    for (const [object, group] of groupByObject(sources)) {
      const packer = new ObjectPacker();
      for (const src of group) {
        const requested = (src.expert ? expertQuant : trunkQuant) ?? input.keptDtype(src) ?? 'f32';
        const dtype = chooseDtype(src, requested, warn);
        if (src.kind === 'matrix') used[src.expert ? 'experts' : 'trunk'].add(dtype);
        const bytes = await input.encode(src, dtype);
        if (bytes.length !== shardBytes(dtype, src.shape.reduce((a, b) => a * b, 1))) throw new Error(`internal: ${src.name} encoded to ${bytes.length} bytes`);
        tensors[src.name] = { object, offset: packer.add(bytes), bytes: bytes.length, dtype, shape: src.shape };
        opts.onProgress?.({ done: ++done, total: sources.length, tensor: src.name });
      }
      objects[object] = await writeObject(outDir, object, packer.finish());
    }
    for (const [name, bytes] of meta.files) objects[name] = await writeObject(outDir, name, bytes);

    // the manifest names one format per part: the requested one, else (kept GGUF types) the widest in use
    const widest = (q: DType | undefined, part: Set<DType>) => q ?? (['f32', 'f16', 'q8_0', 'q4_0'] as DType[]).find((d) => part.has(d)) ?? 'f32';
    const manifest = parseManifest({
      format: MANIFEST_FORMAT,
      name: opts.name ?? input.name,
      architecture,
      quant: { trunk: widest(trunkQuant, used.trunk), experts: widest(expertQuant, used.experts) },
      objects,
      tensors,
      tokenizer: meta.tokenizer,
      chatTemplate: meta.chatTemplate,
      generation: meta.generation,
    } satisfies Manifest);
    // written last: its presence marks a complete model
    await writeFile(join(outDir, objectNames.manifest), formatManifest(manifest));
    const bytes = Object.values(objects).reduce((a, o) => a + o.bytes, 0);
    return { manifest, bytes, warnings };
  } finally {
    await input.close();
  }
}

async function openInput(inDir: string, trunkQuant: DType | undefined, expertQuant: DType | undefined, warn: (msg: string) => void): Promise<ConvertInput> {
  const gguf = await isGgufInput(inDir);
  if (!gguf && (trunkQuant === undefined || expertQuant === undefined)) throw new Error('converting an HF checkpoint needs --quant (f32, f16, q8_0 or q4_0)');
  return gguf ? openGguf(inDir, warn) : openHfInput(inDir, warn);
}

/** Indented JSON with number arrays (shapes) on one line, so a manifest of a thousand tensors stays readable. */
function formatManifest(m: Manifest): string {
  // raw newlines occur only between JSON tokens (never inside strings), so this touches no string value
  const numbers = /\[\n\s+(-?[\d.e+-]+(?:,\n\s+-?[\d.e+-]+)*)\n\s+\]/g;
  return JSON.stringify(m, null, 2).replace(numbers, (_, list: string) => `[${list.split(/,\n\s+/).join(', ')}]`) + '\n';
}

/** f32 for 1-D tensors and routers; the requested format for matrices whose rows are whole 32-blocks, else f16. */
export function chooseDtype(src: TensorSource, requested: DType, warn: (msg: string) => void): DType {
  if (src.kind !== 'matrix') return 'f32';
  const cols = src.shape[src.shape.length - 1];
  if (canQuantizeRows(requested, cols)) return requested;
  warn(`${src.name}: ${cols} columns are not a multiple of 32, stored as f16 instead of ${requested}`);
  return 'f16';
}

/** trunk.bin first, then experts/<layer>/<expert>.bin in order; tensors keep their order inside an object. */
function groupByObject(sources: TensorSource[]): Map<string, TensorSource[]> {
  const groups = new Map<string, TensorSource[]>([[objectNames.trunk, []]]);
  for (const s of sources) {
    const object = s.expert ? objectNames.expert(s.expert.layer, s.expert.expert) : objectNames.trunk;
    let g = groups.get(object);
    if (!g) groups.set(object, (g = []));
    g.push(s);
  }
  return groups;
}

function checkCheckpoint(ckpt: Awaited<ReturnType<typeof openCheckpoint>>, sources: TensorSource[], warn: (msg: string) => void): void {
  const problems = new Set<string>(); // a set: a merged tensor is named once per slice
  for (const s of sources) {
    const e = ckpt.entry(s.hf);
    if (!e) problems.add(`${s.hf} is missing`);
    else if (e.shape.join(',') !== hfShape(s).join(',')) problems.add(`${s.hf} has shape [${e.shape}], expected [${hfShape(s)}]`);
  }
  const list = [...problems];
  if (list.length) throw new Error(`checkpoint does not match config.json: ${list.slice(0, 10).join('; ')}${list.length > 10 ? ` (+${list.length - 10} more)` : ''}`);
  const used = new Set(sources.map((s) => s.hf));
  const unused = ckpt.names().filter((n) => !used.has(n) && !IGNORED.test(n));
  if (unused.length) warn(`${unused.length} checkpoint tensors are not used: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', ...' : ''}`);
}

async function writeObject(outDir: string, name: string, bytes: Uint8Array): Promise<{ bytes: number; sha256: string }> {
  const path = join(outDir, ...name.split('/'));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
  return { bytes: bytes.length, sha256: await sha256Hex(bytes) };
}

const USAGE = 'usage: convert --in <hf-folder | file.gguf> --out <model-folder> [--quant f32|f16|q8_0|q4_0] [--trunk-quant q] [--expert-quant q] [--name n]\n  --quant is required for an HF folder; a GGUF keeps its tensor types unless --quant names one';

/** CLI entry: parses the flags, shows a progress bar, prints a summary. Throws on bad flags or a failed conversion. */
export async function convertCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      in: { type: 'string' },
      out: { type: 'string' },
      quant: { type: 'string' },
      'trunk-quant': { type: 'string' },
      'expert-quant': { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.in || !values.out) throw new Error(USAGE);
  const dtype = (flag: string, v: string | undefined): DType | undefined => {
    if (v === undefined) return undefined;
    if (!DTYPES.includes(v as DType)) throw new Error(`--${flag} ${v}: expected one of ${DTYPES.join(', ')}`);
    return v as DType;
  };

  const bar = new cliProgress.SingleBar({ format: 'convert [{bar}] {value}/{total} {tensor}', hideCursor: true }, cliProgress.Presets.shades_classic);
  const warnings: string[] = [];
  let started = false;
  try {
    const result = await convert({
      inDir: values.in,
      outDir: values.out,
      quant: dtype('quant', values.quant),
      trunkQuant: dtype('trunk-quant', values['trunk-quant']),
      expertQuant: dtype('expert-quant', values['expert-quant']),
      name: values.name,
      warn: (msg) => warnings.push(msg), // printed after the bar, which would overwrite them
      onProgress: ({ done, total, tensor }) => {
        if (!started) bar.start(total, 0, { tensor });
        started = true;
        bar.update(done, { tensor });
      },
    });
    bar.stop();
    for (const w of warnings) console.warn(`warning: ${w}`);
    const m = result.manifest;
    console.log(
      `wrote ${values.out}: ${m.name} (${m.architecture.modelType}, ${m.architecture.numLayers} layers x ${m.architecture.numExperts} experts), ` +
        `trunk ${m.quant.trunk}, experts ${m.quant.experts}, ${Object.keys(m.objects).length} objects, ${(result.bytes / 2 ** 20).toFixed(2)} MiB`,
    );
  } catch (e) {
    bar.stop();
    for (const w of warnings) console.warn(`warning: ${w}`);
    throw e;
  }
}

// `npm run cli -- export-gguf --model <dir> --out <file.gguf>`: a moe-edge/1 model as a GGUF that llama.cpp
// loads (mixtral = arch `llama`, qwen2moe, qwen3moe, olmoe, granitemoe; stacked expert tensors), tokenizer
// included; q8_0/q4_0 blocks are re-laid out, never re-quantized, so llama.cpp computes with exactly our
// weights (the parity tests check it).
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { gguf, ggmlBytes, LLAMA_FTYPE, ropePermuteRows, shardToGgml, writeGguf, type GgufFile, type GgufTensor, type GgufValue } from './convert/gguf';
import { GGUF_ARCH, ggufStackedExperts, ggufTensorName, NORM_TOPK_DEFAULT, PERMUTED_QK_ARCHS, type ExpertProjection } from './convert/gguf-arch';
import { objectNames, tensorNames, type Manifest } from '../src/format/manifest';
import { isQuantized, shardBytes } from '../src/format/quant';
import { readManifest, readVerified, type ObjectSource } from '../src/store/source';
import { fsSource } from '../src/store/source-fs';

// llama.cpp's token types (enum llama_token_type)
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** Reads every object the export needs (digest-checked) and builds the GGUF in memory. */
export async function exportGguf(source: ObjectSource, opts: { name?: string } = {}): Promise<GgufFile> {
  const manifest = await readManifest(source);
  const objects = new Map<string, Uint8Array>();
  const object = async (name: string) => {
    let b = objects.get(name);
    if (!b) objects.set(name, (b = await readVerified(source, manifest, name)));
    return b;
  };
  for (const e of Object.values(manifest.tensors)) await object(e.object);
  const tokenizer = manifest.tokenizer
    ? { json: parseJson(await object(manifest.tokenizer.json)), config: parseJson(await object(manifest.tokenizer.config)) }
    : null;
  return {
    version: 3,
    metadata: new Map([...modelMetadata(manifest, opts.name), ...tokenizerMetadata(manifest, tokenizer)]),
    tensors: tensors(manifest, (name) => objects.get(name)!),
  };
}

function modelMetadata(m: Manifest, name?: string): [string, GgufValue][] {
  const a = m.architecture;
  const ARCH = GGUF_ARCH[a.modelType];
  // llama.cpp's graph for each arch fixes whether the top-k weights are renormalised
  if (a.normTopKProb !== NORM_TOPK_DEFAULT[ARCH]) {
    throw new Error(`export-gguf: llama.cpp's ${ARCH} ${NORM_TOPK_DEFAULT[ARCH] ? 'always renormalises' : 'never renormalises'} the top-k routing weights; this model does ${a.normTopKProb ? '' : 'not '}`);
  }
  const quantized = Object.values(m.tensors).some((t) => isQuantized(t.dtype));
  const out: [string, GgufValue][] = [
    ['general.architecture', gguf.string(ARCH)],
    ['general.name', gguf.string(name ?? m.name)],
    ['general.file_type', gguf.u32(LLAMA_FTYPE[m.quant.experts])],
  ];
  if (quantized) out.push(['general.quantization_version', gguf.u32(2)]);
  out.push(
    [`${ARCH}.vocab_size`, gguf.u32(a.vocabSize)],
    [`${ARCH}.context_length`, gguf.u32(a.contextLength)],
    [`${ARCH}.embedding_length`, gguf.u32(a.hiddenSize)],
    [`${ARCH}.block_count`, gguf.u32(a.numLayers)],
    // the dense FFN width llama.cpp requires; MoE layers use the expert widths below (qwen: HF's intermediate_size)
    [`${ARCH}.feed_forward_length`, gguf.u32(a.sharedExpertFfnSize || a.expertFfnSize)],
    [`${ARCH}.attention.head_count`, gguf.u32(a.numHeads)],
    [`${ARCH}.attention.head_count_kv`, gguf.u32(a.numKvHeads)],
  );
  if (a.headDim * a.numHeads !== a.hiddenSize) {
    out.push([`${ARCH}.attention.key_length`, gguf.u32(a.headDim)], [`${ARCH}.attention.value_length`, gguf.u32(a.headDim)]);
  }
  out.push(
    [`${ARCH}.attention.layer_norm_rms_epsilon`, gguf.f32(a.rmsNormEps)],
    [`${ARCH}.rope.freq_base`, gguf.f32(a.ropeTheta)],
    [`${ARCH}.rope.dimension_count`, gguf.u32(a.headDim)],
    [`${ARCH}.expert_count`, gguf.u32(a.numExperts)],
    [`${ARCH}.expert_used_count`, gguf.u32(a.topK)],
  );
  if (a.modelType === 'qwen2_moe' || a.modelType === 'qwen3_moe') out.push([`${ARCH}.expert_feed_forward_length`, gguf.u32(a.expertFfnSize)]);
  if (a.modelType === 'qwen2_moe') out.push([`${ARCH}.expert_shared_feed_forward_length`, gguf.u32(a.sharedExpertFfnSize)]);
  if (a.modelType === 'granitemoe') {
    out.push(
      [`${ARCH}.attention.scale`, gguf.f32(a.attentionMultiplier ?? 1 / Math.sqrt(a.headDim))],
      [`${ARCH}.embedding_scale`, gguf.f32(a.embeddingMultiplier)],
      [`${ARCH}.residual_scale`, gguf.f32(a.residualMultiplier)],
      [`${ARCH}.logit_scale`, gguf.f32(a.logitsScaling)],
    );
  } else if (a.embeddingMultiplier !== 1 || a.residualMultiplier !== 1 || a.logitsScaling !== 1 || a.attentionMultiplier !== undefined) {
    throw new Error(`export-gguf: ${ARCH} has no keys for embedding/attention/residual/logit multipliers`);
  }
  return out;
}

// ---- tensors ----

function tensors(m: Manifest, objectBytes: (name: string) => Uint8Array): GgufTensor[] {
  const a = m.architecture;
  const t = tensorNames;
  const permuteQk = PERMUTED_QK_ARCHS.has(GGUF_ARCH[a.modelType]) && a.ropeLayout === 'neox';
  const ggml = (name: string) => {
    const e = m.tensors[name];
    if (!e) throw new Error(`export-gguf: tensor ${name} missing from the manifest`);
    const n = e.shape.reduce((x, y) => x * y, 1);
    if (e.bytes !== shardBytes(e.dtype, n)) throw new Error(`export-gguf: ${name} has ${e.bytes} bytes, ${e.dtype} ${e.shape} needs ${shardBytes(e.dtype, n)}`);
    const data = shardToGgml(e.dtype, objectBytes(e.object).subarray(e.offset, e.offset + e.bytes), n);
    return { e, data };
  };
  // ggml's ne is our shape reversed: W (rows, cols) is ne [cols, rows]; a (1, H) row is 1-D [H]
  const plain = (name: string, permuteHeads?: number): GgufTensor => {
    const { e, data } = ggml(name);
    const dims = e.shape.length === 2 && e.shape[0] === 1 ? [e.shape[1]] : [...e.shape].reverse();
    const rows = permuteHeads !== undefined && permuteQk ? ropePermuteRows(data, e.shape[0], permuteHeads) : data;
    return { name: ggufTensorName(name), dims, dtype: e.dtype, data: rows };
  };
  // E experts of W (rows, cols) -> one tensor ne [cols, rows, E]: expert e's matrix is the e-th slab
  const stacked = (l: number, proj: ExpertProjection, name: (e: number) => string): GgufTensor => {
    const gg = ggufStackedExperts(l, proj);
    const parts = Array.from({ length: a.numExperts }, (_, i) => ggml(name(i)));
    const { e } = parts[0];
    for (const p of parts) {
      if (p.e.dtype !== e.dtype || p.e.shape.join() !== e.shape.join()) throw new Error(`export-gguf: experts of ${gg} differ in dtype or shape`);
    }
    const data = new Uint8Array(ggmlBytes(e.dtype, e.shape[0] * e.shape[1] * a.numExperts));
    parts.forEach((p, i) => data.set(p.data, i * p.data.length));
    return { name: gg, dims: [e.shape[1], e.shape[0], a.numExperts], dtype: e.dtype, data };
  };
  const optional = (name: string): GgufTensor[] => (m.tensors[name] ? [plain(name)] : []);

  // llama.cpp's converter order
  const out: GgufTensor[] = [plain(t.tokenEmbedding)];
  for (let l = 0; l < a.numLayers; l++) {
    out.push(
      plain(t.attnNorm(l)),
      plain(t.attnQ(l), a.numHeads),
      plain(t.attnK(l), a.numKvHeads),
      plain(t.attnV(l)),
      ...optional(t.attnQBias(l)),
      ...optional(t.attnKBias(l)),
      ...optional(t.attnVBias(l)),
      plain(t.attnOutput(l)),
      ...optional(t.attnQNorm(l)),
      ...optional(t.attnKNorm(l)),
      plain(t.ffnNorm(l)),
      plain(t.router(l)),
      stacked(l, 'gate', (e) => t.expertGate(l, e)),
      stacked(l, 'up', (e) => t.expertUp(l, e)),
      stacked(l, 'down', (e) => t.expertDown(l, e)),
      ...optional(t.sharedExpertGate(l)),
      ...optional(t.sharedGate(l)),
      ...optional(t.sharedUp(l)),
      ...optional(t.sharedDown(l)),
    );
  }
  out.push(plain(t.outputNorm));
  if (!a.tieWordEmbeddings) out.push(plain(t.output));
  return out;
}

// ---- tokenizer ----

type Json = Record<string, unknown>;
interface AddedToken { id: number; content: string; special?: boolean }

function parseJson(bytes: Uint8Array): Json {
  return JSON.parse(new TextDecoder().decode(bytes)) as Json;
}

const content = (tok: unknown): string | undefined =>
  typeof tok === 'string' ? tok : tok && typeof tok === 'object' && typeof (tok as Json).content === 'string' ? ((tok as Json).content as string) : undefined;

/**
 * tokenizer.ggml.* from tokenizer.json: a byte-level BPE becomes llama.cpp's `gpt2` vocabulary with the
 * GPT-2 pre-tokenizer regex (what HF's ByteLevel pre-tokenizer with use_regex applies). Without a tokenizer,
 * a placeholder vocabulary (as the shared fixtures carry) lets llama.cpp load the model for token-id use.
 */
function tokenizerMetadata(m: Manifest, tok: { json: Json; config: Json } | null): [string, GgufValue][] {
  const V = m.architecture.vocabSize;
  const g = m.generation;
  if (!tok) return placeholderVocab(V, g);
  const model = tok.json.model as Json;
  if (model?.type !== 'BPE') throw new Error(`export-gguf: tokenizer model ${String(model?.type)} is not supported (byte-level BPE only)`);
  const pre = tok.json.pre_tokenizer as Json | null;
  const byteLevel = (p: Json | null | undefined): boolean => !!p && p.type === 'ByteLevel' && p.use_regex !== false;
  if (!byteLevel(pre)) throw new Error(`export-gguf: pre-tokenizer ${JSON.stringify(pre)?.slice(0, 80)} is not supported (ByteLevel with GPT-2's regex only)`);
  if (tok.json.normalizer) throw new Error('export-gguf: tokenizers with a normalizer are not supported');

  const tokens: (string | undefined)[] = new Array(V);
  const types: number[] = new Array(V).fill(TOKEN_TYPE.normal);
  for (const [text, id] of Object.entries(model.vocab as Record<string, number>)) if (id < V) tokens[id] = text;
  for (const t of (tok.json.added_tokens ?? []) as AddedToken[]) {
    if (t.id >= V) throw new Error(`export-gguf: added token ${t.content} id ${t.id} is outside the vocabulary (${V})`);
    tokens[t.id] = t.content;
    types[t.id] = t.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  for (let i = 0; i < V; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`; // rows of the embedding no token uses (as llama.cpp's converter pads)
      types[i] = TOKEN_TYPE.unused;
    }
  }
  const merges = (model.merges as (string | [string, string])[]).map((x) => (typeof x === 'string' ? x : x.join(' ')));
  const id = (text: string | undefined) => (text === undefined ? -1 : tokens.indexOf(text));
  const eos = id(content(tok.config.eos_token));
  const eosId = eos >= 0 ? eos : g.eosTokenIds[0];
  const out: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gguf.string('gpt2')],
    ['tokenizer.ggml.pre', gguf.string('gpt-2')],
    ['tokenizer.ggml.tokens', gguf.strings(tokens as string[])],
    ['tokenizer.ggml.token_type', gguf.i32s(types)],
    ['tokenizer.ggml.merges', gguf.strings(merges)],
  ];
  if (g.bosTokenId !== null) out.push(['tokenizer.ggml.bos_token_id', gguf.u32(g.bosTokenId)]);
  if (eosId !== undefined) out.push(['tokenizer.ggml.eos_token_id', gguf.u32(eosId)]);
  // a second end token (e.g. a chat turn's <|end|>) becomes llama.cpp's end-of-turn token, also end of generation
  const eot = g.eosTokenIds.find((x) => x !== eosId);
  if (eot !== undefined) out.push(['tokenizer.ggml.eot_token_id', gguf.u32(eot)]);
  const unk = id(content(tok.config.unk_token));
  if (unk >= 0) out.push(['tokenizer.ggml.unknown_token_id', gguf.u32(unk)]);
  out.push(['tokenizer.ggml.add_bos_token', gguf.bool(g.addBos)], ['tokenizer.ggml.add_eos_token', gguf.bool(false)]);
  if (m.chatTemplate) out.push(['tokenizer.chat_template', gguf.string(m.chatTemplate)]);
  return out;
}

/** GPT-2's printable character for byte b (ByteLevel's alphabet): printable bytes stand for themselves. */
function byteLevelChar(b: number): string {
  const printable = (x: number) => (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff);
  if (printable(b)) return String.fromCharCode(b);
  let n = 0;
  for (let x = 0; x < b; x++) if (!printable(x)) n++;
  return String.fromCharCode(256 + n);
}

function placeholderVocab(V: number, g: Manifest['generation']): [string, GgufValue][] {
  if (V < 259) {
    // too few ids for <unk> <s> </s> and 256 byte tokens (llama.cpp's SentencePiece setup then fails): a
    // byte-level vocabulary of bytes 0..V-1 instead, which holds the newline llama.cpp looks up
    const tokens = Array.from({ length: V }, (_, b) => byteLevelChar(b));
    return [
      ['tokenizer.ggml.model', gguf.string('gpt2')],
      ['tokenizer.ggml.pre', gguf.string('gpt-2')],
      ['tokenizer.ggml.tokens', gguf.strings(tokens)],
      ['tokenizer.ggml.token_type', gguf.i32s(tokens.map(() => TOKEN_TYPE.normal))],
      ['tokenizer.ggml.merges', gguf.strings([])],
      ['tokenizer.ggml.add_bos_token', gguf.bool(false)],
    ];
  }
  const base = ['<unk>', '<s>', '</s>', ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)];
  const tokens = Array.from({ length: V }, (_, i) => base[i] ?? `[PAD${i}]`);
  const types = tokens.map((_, i) => (i === 0 ? TOKEN_TYPE.unknown : i < 3 ? TOKEN_TYPE.control : i < base.length ? TOKEN_TYPE.byte : TOKEN_TYPE.unused));
  return [
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.strings(tokens)],
    ['tokenizer.ggml.scores', gguf.f32s(tokens.map(() => 0))],
    ['tokenizer.ggml.token_type', gguf.i32s(types)],
    ['tokenizer.ggml.bos_token_id', gguf.u32(g.bosTokenId ?? 1)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(g.eosTokenIds[0] ?? 2)],
    ['tokenizer.ggml.unknown_token_id', gguf.u32(0)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(false)],
    ['tokenizer.ggml.add_eos_token', gguf.bool(false)],
  ];
}

// ---- command ----

export async function exportGgufFile(modelDir: string, outFile: string, opts: { name?: string } = {}): Promise<{ bytes: number; tensors: number }> {
  const file = await exportGguf(fsSource(modelDir), opts);
  const bytes = writeGguf(file);
  await writeFile(outFile, bytes);
  return { bytes: bytes.length, tensors: file.tensors.length };
}

export async function exportGgufCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' } } });
  if (!values.model || !values.out) throw new Error('export-gguf needs --model <model-folder> and --out <file.gguf>');
  const r = await exportGgufFile(values.model, values.out, { name: values.name });
  process.stdout.write(`wrote ${values.out}: ${r.tensors} tensors, ${(r.bytes / 1e6).toFixed(2)} MB (${objectNames.manifest} of ${values.model})\n`);
}

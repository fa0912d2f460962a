// `convert --in file.gguf`: llama.cpp's own GGUFs of the shared fixtures import into exactly the tensors an HF
// conversion writes; every ggml type we do not compute with (q4_1, q5_*, k-quants, bf16) is dequantized so
// that our logits agree with real llama.cpp running the same file; both vocabulary kinds (gpt2 byte-level BPE,
// llama SentencePiece) come out as a tokenizer.json that tokenizes as llama.cpp does.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaInstalled, llamaLogits, openLlama } from '../../../bench/peers/llama';
import { loadTextModel } from '../../../src/engine/load';
import { gguf, readGguf, writeGguf, type GgmlType } from '../../../tools/convert/gguf';
import type { Manifest } from '../../../src/format/manifest';
import { fsSource } from '../../../src/store/source-fs';
import { convert, convertCommand } from '../../../tools/convert';
import { exportGgufFile } from '../../../tools/export-gguf';
import { makeKernels } from '../../../tools/kernels-node';
import { scoreTokens } from '../../../tools/score';
import { quantZooGguf } from '../../helpers/gguf-quant-model';
import { maxAbsDiff } from '../../helpers/logits';
import { sharedPath } from '../../shared-dir';

const ROOT = resolve(__dirname, '../../..');
const ARCHS = ['mixtral', 'qwen2_moe', 'olmoe', 'granitemoe'];
const out = mkdtempSync(join(tmpdir(), 'moe-edge-gguf-import-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

beforeAll(() => {
  if (!llamaInstalled()) execFileSync('npm', ['run', 'setup:peers'], { cwd: ROOT, stdio: 'inherit', timeout: 300_000 });
}, 600_000);

const tensorBytes = (dir: string, m: Manifest, name: string) => {
  const e = m.tensors[name];
  return readFileSync(join(dir, e.object)).subarray(e.offset, e.offset + e.bytes);
};

describe.each(ARCHS)('%s: llama.cpp\'s GGUF imports into the HF conversion\'s tensors', (arch) => {
  const fixture = sharedPath('fixtures', arch);

  it.each(['f32', 'q8_0'] as const)('%s: every tensor bit-identical, same architecture, f32 logits within 1e-3 of llama.cpp', async (q) => {
    const fromGguf = join(out, `${arch}-${q}-gguf`);
    const fromHf = join(out, `${arch}-${q}-hf`);
    const warnings: string[] = [];
    const g = await convert({ inDir: join(fixture, `model-${q}.gguf`), outDir: fromGguf, warn: (w) => warnings.push(w) });
    const h = await convert({ inDir: fixture, outDir: fromHf, quant: q, warn: () => {} });
    expect(warnings).toEqual([]); // f32 and q8_0 pass through: nothing requantized
    expect(g.manifest.architecture).toEqual(h.manifest.architecture);
    expect(g.manifest.quant).toEqual(h.manifest.quant);
    expect(Object.keys(g.manifest.tensors).sort()).toEqual(Object.keys(h.manifest.tensors).sort());
    for (const name of Object.keys(h.manifest.tensors)) {
      expect(g.manifest.tensors[name].dtype, name).toBe(h.manifest.tensors[name].dtype);
      expect(Buffer.compare(tensorBytes(fromGguf, g.manifest, name), tensorBytes(fromHf, h.manifest, name)), name).toBe(0);
    }
    if (q === 'f32') {
      const ref = JSON.parse(readFileSync(join(fixture, 'reference.json'), 'utf8')) as { tokens: number[]; logits: number[][] };
      const model = await loadTextModel(fsSource(fromGguf), await makeKernels());
      for (const mode of ['prefill', 'decode'] as const) expect(maxAbsDiff(await scoreTokens(model, ref.tokens, mode), ref.logits)).toBeLessThanOrEqual(1e-3);
    }
  });
});

// qwen3_moe has no shared fixture: its checkpoint in test/unit/engine/data comes with logits from an independent
// float64 PyTorch forward pass. Exported by us, real llama.cpp reproduces them; imported back, it is our conversion.
describe('qwen3_moe: export, llama.cpp, import', () => {
  const data = resolve(ROOT, 'test/unit/engine/data/qwen3_moe');
  const ref = JSON.parse(readFileSync(join(data, 'reference.json'), 'utf8')) as { tokens: number[]; logits: number[][] };

  it.each(['f32', 'q8_0'] as const)('%s: llama.cpp runs our export (f32: float64 reference logits within 1e-3), and it imports into the same tensors', async (q) => {
    const converted = join(out, `qwen3-${q}`);
    const c = await convert({ inDir: data, outDir: converted, quant: q, warn: () => {} });
    const file = join(out, `qwen3-${q}.gguf`);
    await exportGgufFile(converted, file);
    const s = await openLlama(file, { contextSize: 64 });
    try {
      const rows = await llamaLogits(s, ref.tokens);
      expect(rows).toHaveLength(ref.tokens.length);
      if (q === 'f32') expect(maxAbsDiff(rows, ref.logits)).toBeLessThanOrEqual(1e-3);
      else expect(maxAbsDiff(rows, await scoreTokens(await loadTextModel(fsSource(converted), await makeKernels()), ref.tokens, 'prefill'))).toBeLessThanOrEqual(1e-2);
    } finally {
      await s.dispose();
    }
    const back = join(out, `qwen3-${q}-back`);
    const g = await convert({ inDir: file, outDir: back, warn: () => {} });
    expect(g.manifest.architecture).toEqual(c.manifest.architecture);
    for (const name of Object.keys(c.manifest.tensors)) expect(Buffer.compare(tensorBytes(back, g.manifest, name), tensorBytes(converted, c.manifest, name)), name).toBe(0);
  });
});

describe('ggml types the engine does not compute with: dequantized as llama.cpp reads them', () => {
  const tokens = Array.from({ length: 16 }, (_, i) => 3 + ((i * 37) % 250));
  // llama.cpp quantizes the activations feeding these matmuls (q8_K / q8_0 / q8_1), we run the dequantized
  // weights in f32: that alone moves logits (max |logit| ~1.5 here) by 5e-3..2e-2 (measured: the f32 control
  // file, whose output head is q6_K too, lands at 5e-3). A misread block layout moves them by ~1.
  const BAR = 0.05;
  let kernels: Awaited<ReturnType<typeof makeKernels>>;
  beforeAll(async () => { kernels = await makeKernels(); });

  const ours = async (dir: string) => scoreTokens(await loadTextModel(fsSource(dir), kernels), tokens, 'prefill');
  const theirs = async (file: string) => {
    const s = await openLlama(file, { contextSize: 64 });
    try {
      return await llamaLogits(s, tokens);
    } finally {
      await s.dispose();
    }
  };

  it.each(['q4_1', 'q5_0', 'q5_1', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'bf16'] satisfies GgmlType[])('%s: --quant f32 gives llama.cpp\'s logits', async (type) => {
    const file = join(out, `zoo-${type}.gguf`);
    writeFileSync(file, quantZooGguf([type]));
    const warnings: string[] = [];
    await convert({ inDir: file, outDir: join(out, `zoo-${type}`), quant: 'f32', warn: (w) => warnings.push(w) });
    expect(warnings.join('\n')).toMatch(new RegExp(`${type} -> f32: dequantized exactly`));
    expect(maxAbsDiff(await ours(join(out, `zoo-${type}`)), await theirs(file))).toBeLessThanOrEqual(BAR);
  });

  it('without --quant, other types become q8_0 (bf16 f16) with a warning, ours stay as they are, and logits stay close', async () => {
    const file = join(out, 'zoo-mixed.gguf');
    writeFileSync(file, quantZooGguf());
    const warnings: string[] = [];
    const r = await convert({ inDir: file, outDir: join(out, 'zoo-mixed'), warn: (w) => warnings.push(w) });
    const t = r.manifest.tensors;
    expect(t['blk.0.attn_q'].dtype).toBe('q8_0'); // q4_1 in the file
    expect(t['blk.1.attn_k'].dtype).toBe('f16'); // bf16 in the file
    expect(t.token_embd.dtype).toBe('q8_0'); // q8_0 in the file: kept
    expect(t['blk.0.ffn_norm'].dtype).toBe('f32');
    expect(warnings.join('\n')).toMatch(/q4_K -> q8_0: dequantized and requantized/);
    expect(maxAbsDiff(await ours(join(out, 'zoo-mixed')), await theirs(file))).toBeLessThanOrEqual(2 * BAR);
  });

  it('types we cannot read are refused by name, and a dense llama is not taken for an MoE', async () => {
    const f = readGguf(new Uint8Array(readFileSync(sharedPath('fixtures', 'mixtral', 'model-f32.gguf'))));
    const bytes = writeGguf(f);
    // patch the first tensor info's type id to iq2_xxs (16): the info follows the name token_embd.weight, n_dims, dims
    const at = Buffer.from(bytes).indexOf('token_embd.weight') + 'token_embd.weight'.length + 4 + 2 * 8;
    new DataView(bytes.buffer).setUint32(at, 16, true);
    writeFileSync(join(out, 'iq.gguf'), bytes);
    await expect(convert({ inDir: join(out, 'iq.gguf'), outDir: join(out, 'iq'), warn: () => {} })).rejects.toThrow(/token_embd\.weight: ggml type iq2_xxs \(16\) is not supported/);

    f.metadata.delete('llama.expert_count');
    writeFileSync(join(out, 'dense.gguf'), writeGguf(f));
    await expect(convert({ inDir: join(out, 'dense.gguf'), outDir: join(out, 'dense'), warn: () => {} })).rejects.toThrow(/dense model, not an MoE/);

    writeFileSync(join(out, 'cut.gguf'), readFileSync(sharedPath('fixtures', 'mixtral', 'model-f32.gguf')).subarray(0, 5000));
    await expect(convert({ inDir: join(out, 'cut.gguf'), outDir: join(out, 'cut'), warn: () => {} })).rejects.toThrow(/runs past the end of the file|truncated/);
  });
});

describe('tokenizers from tokenizer.ggml.*', () => {
  it('gpt2 (byte-level BPE): the default model exported to GGUF and imported tokenizes and templates as before', async () => {
    const model = resolve(ROOT, 'models/default');
    await exportGgufFile(model, join(out, 'default.gguf'));
    // through the CLI entry, as a user runs it
    await convertCommand(['--in', join(out, 'default.gguf'), '--out', join(out, 'default-back')]);
    const kernels = await makeKernels();
    const a = await loadTextModel(fsSource(model), kernels);
    const b = await loadTextModel(fsSource(join(out, 'default-back')), kernels);
    for (const text of ['ROMEO:\nWhat light is this, my lord?', 'def read_lines(path):\n    return open(path).read()\n', '127 + 58 = 185\n46 + 39 =', 'naïve café — 日本語 🙂']) {
      expect(b.encode(text), text).toEqual(a.encode(text));
    }
    const chat = [{ role: 'user' as const, content: 'What is 2 + 2?' }];
    expect(b.encodeChat(chat)).toEqual(a.encodeChat(chat));
    expect(b.manifest.generation.eosTokenIds.sort()).toEqual(a.manifest.generation.eosTokenIds.sort());
    expect(b.manifest.chatTemplate).toBe(a.manifest.chatTemplate);
  });

  it('llama (SentencePiece): merges rebuilt from piece scores tokenize as llama.cpp does', async () => {
    // the mixtral fixture with scored pieces in place of control-byte tokens (0x0B..) it never needs; as in real
    // SentencePiece vocabularies, every character of a piece is a piece too (id 259 is already '▁')
    const f = readGguf(new Uint8Array(readFileSync(sharedPath('fixtures', 'mixtral', 'model-f32.gguf'))));
    const tokens = [...(f.metadata.get('tokenizer.ggml.tokens')!.value as string[])];
    const scores = tokens.map(() => 0);
    const types = [...(f.metadata.get('tokenizer.ggml.token_type')!.value as number[])];
    const chars = [...'thecasin'].map((c, i): [string, number] => [c, -20 - i]);
    const pieces: [string, number][] = [...chars, ['\u2581t', -1], ['he', -2], ['\u2581the', -0.5], ['at', -3], ['\u2581c', -4], ['\u2581cat', -2.5], ['\u2581s', -5], ['in', -6], ['\u2581in', -4.5]];
    pieces.forEach(([p, s], i) => { tokens[14 + i] = p; scores[14 + i] = s; types[14 + i] = 1; });
    f.metadata.set('tokenizer.ggml.tokens', gguf.strings(tokens));
    f.metadata.set('tokenizer.ggml.scores', gguf.f32s(scores));
    f.metadata.set('tokenizer.ggml.token_type', gguf.i32s(types));
    const file = join(out, 'spm.gguf');
    writeFileSync(file, writeGguf(f));
    await convert({ inDir: file, outDir: join(out, 'spm'), warn: () => {} });
    const ours = await loadTextModel(fsSource(join(out, 'spm')), await makeKernels());
    const llama = await openLlama(file, { contextSize: 128 });
    try {
      for (const text of ['the cat sat in the hat', 'theatre in the cathedral', 'Zürich: the "cat"!']) {
        const ids = ours.encode(text);
        expect(ids, text).toEqual(llama.model.tokenize(text, false));
        expect(ours.codec!.decode(ids)).toBe(text);
      }
      expect(ours.encode('the cat')).toEqual([tokens.indexOf('\u2581the'), tokens.indexOf('\u2581cat')]); // pieces, not bytes
    } finally {
      await llama.dispose();
    }
  });
});

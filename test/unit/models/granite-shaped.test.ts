// The granite-shaped random model generator (models/make-granite-shaped.ts) on its scaled-down variant: 2 layers
// at granite's full widths, q4_0 and q8_0. Same arguments give the same bytes, the architecture is the published
// config's, and the engine loads it and generates from it with a 49155-entry tokenizer.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTextModel } from '../../../src/engine/load';
import { argmax, seededRandom } from '../../../src/engine/sampler';
import { parseManifest, type Manifest } from '../../../src/format/manifest';
import { encodeTensor } from '../../../src/format/quant';
import { fsSource } from '../../../src/store/source-fs';
import { architectureFromHf } from '../../../tools/convert/hf-config';
import { makeKernels } from '../../../tools/kernels-node';
import { scoreTokens } from '../../../tools/score';
import { encodeRandomMatrix, GRANITE_CONFIG, makeGraniteShaped, type GraniteQuant } from '../../../models/make-granite-shaped';

const LAYERS = 2;

// text this repo owns for the tokenizer checks (the model reads no corpus): English prose, code, digits, unicode
const PROSE = `The worker keeps the trunk of the model and a few hot experts in its own memory, and sends the
rest to a backend that may be far away. When a request comes in, it reads the prompt, runs every layer, and
asks the router which experts each token should visit. Most of the time the answer is one that it already
holds, so the round trip is short; when it is not, the token waits for the network.

We wrote this paragraph for a test. It should read like ordinary English, with long and short words, commas,
and a question or two: what happens if the backend is down? Then the request fails with a clear error, and
nobody has to guess why.`;
const OTHER = [
  'def route(scores, k=2):\n    top = sorted(range(len(scores)), key=lambda i: -scores[i])[:k]\n    return top\n',
  'Order 4711 shipped on 2026-12-03 at 09:45; total 1,234.50 EUR (incl. 19% VAT).',
  'naïve café, Straße, 日本語のテキスト, Ελληνικά, emoji 🙂🚀 and tabs\tand\r\nCRLF',
];

describe('encodeRandomMatrix', () => {
  it('writes, chunk by chunk, the bytes encodeTensor gives for the whole matrix', () => {
    const [rows, cols] = [1100, 1024]; // more than one 1 Mi-element chunk, the last one partial
    const values = new Float32Array(encodeRandomMatrix('f32', rows, cols, 0.02, seededRandom(7)).buffer);
    for (const q of ['q8_0', 'q4_0'] as const) {
      const chunked = Buffer.from(encodeRandomMatrix(q, rows, cols, 0.02, seededRandom(7)));
      expect(chunked.equals(encodeTensor(q, values))).toBe(true); // Buffer.equals: toEqual walks a MB byte by byte
    }
  });
});

describe('granite-shaped model, 2 layers at full width', () => {
  let tmp: string;
  const dirs: Record<string, string> = {};
  const manifests: Record<string, Manifest> = {};

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'granite-shaped-test-'));
    for (const run of ['q4_0', 'q4_0-again', 'q8_0']) {
      const quant = run.slice(0, 4) as GraniteQuant;
      dirs[run] = join(tmp, run);
      manifests[run] = (await makeGraniteShaped({ quant, layers: LAYERS, outDir: dirs[run] })).manifest;
    }
  }, 300_000);

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('is deterministic: two runs write byte-identical objects and manifests', async () => {
    expect(manifests['q4_0-again'].objects).toEqual(manifests.q4_0.objects);
    const text = (run: string) => readFile(join(dirs[run], 'manifest.json'), 'utf8');
    expect(await text('q4_0-again')).toBe(await text('q4_0'));
  });

  it.each(['q4_0', 'q8_0'] as const)('%s: has the published architecture but for numLayers, and the converter\'s dtypes', async (quant) => {
    const published = JSON.parse(await readFile(GRANITE_CONFIG, 'utf8')) as Record<string, unknown>;
    const m = parseManifest(JSON.parse(await readFile(join(dirs[quant], 'manifest.json'), 'utf8')));
    expect(m.architecture).toEqual({ ...architectureFromHf(published), numLayers: LAYERS });
    expect(m.architecture).toMatchObject({
      modelType: 'granitemoe', hiddenSize: published.hidden_size, numExperts: published.num_local_experts, topK: published.num_experts_per_tok,
      expertFfnSize: published.intermediate_size, vocabSize: published.vocab_size, tieWordEmbeddings: true,
    });
    expect(m.quant).toEqual({ trunk: quant, experts: quant });
    expect(Object.keys(m.objects).filter((o) => o.startsWith('experts/'))).toHaveLength(LAYERS * 32);
    // matrices take the quant; norms and routers stay f32, as the converter keeps them
    expect(m.tensors.token_embd).toMatchObject({ dtype: quant, shape: [49155, 1024] });
    expect(m.tensors['blk.1.expert.31.ffn_down']).toMatchObject({ dtype: quant, shape: [1024, 512] });
    expect(m.tensors['blk.0.attn_norm'].dtype).toBe('f32');
    expect(m.tensors['blk.0.ffn_gate_inp']).toMatchObject({ dtype: 'f32', shape: [32, 1024] });
    expect(m.tensors.output).toBeUndefined(); // tied embeddings
  });

  it('has a 49155-entry BPE tokenizer that round-trips prose, code, digits and unicode', async () => {
    const file = (name: string) => readFile(join(dirs.q4_0, name), 'utf8').then((t) => JSON.parse(t) as Record<string, unknown>);
    const tok = new Tokenizer(await file('tokenizer.json') as never, await file('tokenizer_config.json') as never);
    expect(tok.get_vocab(true).size).toBe(49155);
    expect(tok.token_to_id('<|end_of_text|>')).toBe(0);
    expect(tok.token_to_id('<|tool_call|>')).toBe(49154);
    const encode = (text: string) => tok.encode(text, { add_special_tokens: false }).ids;
    for (const text of [PROSE, ...OTHER, [PROSE, ...OTHER].join('\n')]) {
      const ids = encode(text);
      expect(tok.decode(ids)).toBe(text);
      expect(ids.length).toBeLessThan(Buffer.byteLength(text)); // some merges apply: not bytes alone
    }
    // the merges are learned from English-like seeded words: prose takes over 2 bytes a token (bytes alone: 1)
    expect(encode(PROSE).length).toBeLessThan(Buffer.byteLength(PROSE) / 2);
  });

  it.each(['q4_0', 'q8_0'] as const)('%s: loads and generates 8 greedy tokens with finite, varied logits', async (quant) => {
    const model = await loadTextModel(fsSource(dirs[quant]), await makeKernels());
    const prompt = model.encode('ROMEO: But soft, what light through yonder window breaks?');
    const gen = model.generate({ promptTokens: prompt, maxTokens: 8, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: [] });
    let text = '';
    let r = await gen.next();
    for (; !r.done; r = await gen.next()) text += r.value.text;
    expect(r.value).toMatchObject({ finishReason: 'length', completionTokens: 8 });
    expect(text.length).toBeGreaterThan(0);

    // the same greedy steps through the scorer, to see the logits themselves
    const ids = [...prompt];
    for (let i = 0; i < 8; i++) {
      const logits = await scoreTokens(model as Parameters<typeof scoreTokens>[0], ids);
      const last = logits[logits.length - 1];
      expect(last.every(Number.isFinite)).toBe(true);
      expect(last.some((v) => v !== last[0])).toBe(true);
      ids.push(argmax(last));
    }
    expect(new Set(ids.slice(prompt.length)).size).toBeGreaterThanOrEqual(4);
  }, 120_000);
});

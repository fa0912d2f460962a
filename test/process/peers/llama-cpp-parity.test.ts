// The default model exported to GGUF and run by real llama.cpp (node-llama-cpp's prebuilt CPU binary, 1 thread,
// F32 KV cache) against moe-edge's engine: same tokenizer ids, and for 5 prompts of 32 greedy steps
// near-identical next-token distributions at all but a few steps (routing near-ties, below) and the same
// greedy tokens up to the first of those.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax, llamaGreedy, llamaInstalled, llamaLogits, openLlama, type LlamaSession } from '../../../bench/peers/llama';
import { loadTextModel, type LocalModel } from '../../../src/engine/load';
import { fsSource } from '../../../src/store/source-fs';
import { convert } from '../../../tools/convert';
import { exportGgufFile } from '../../../tools/export-gguf';
import { makeKernels } from '../../../tools/kernels-node';
import { scoreTokens } from '../../../tools/score';
import { sharedPath } from '../../shared-dir';

const ROOT = resolve(__dirname, '../../..');
// MOE_EDGE_PARITY_MODEL points the test at another model folder (any mixtral)
const MODEL = resolve(ROOT, process.env.MOE_EDGE_PARITY_MODEL ?? 'models/default');
const STEPS = 32;

// one per domain of the default model, plain text and chat
const PROMPTS: { text: string; chat?: boolean }[] = [
  { text: 'ROMEO:\nWhat light is this' },
  { text: 'def read_lines(path):\n' },
  { text: '127 + 58 = 185\n46 + 39 =' },
  { text: 'The king said to his son' },
  { text: 'Write a short poem about the sea.', chat: true },
];

function softmax(row: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of row) m = Math.max(m, v);
  const p = Float64Array.from(row, (v) => Math.exp(v - m));
  const s = p.reduce((a, b) => a + b, 0);
  return p.map((v) => v / s);
}

/** max |logit difference|, max |probability difference| and KL(llama || ours) of one next-token distribution. */
function compare(llama: Float32Array, ours: Float32Array): { logit: number; prob: number; kl: number } {
  const p = softmax(llama);
  const q = softmax(ours);
  let logit = 0;
  let prob = 0;
  let kl = 0;
  for (let v = 0; v < p.length; v++) {
    logit = Math.max(logit, Math.abs(llama[v] - ours[v]));
    prob = Math.max(prob, Math.abs(p[v] - q[v]));
    if (p[v] > 0) kl += p[v] * Math.log(p[v] / Math.max(q[v], 1e-300));
  }
  return { logit, prob, kl };
}

// Thresholds. Both engines quantize activations to q8_0 as ggml does, and their float sums differ in the last
// bits (logits agree to ~1e-6 where nothing else happens). Now and then such a last-bit difference flips one
// rounded activation: that position's logits move by ~1e-2, and through its K/V so do the next positions that
// attend to it (measured on the trained default model: max 5e-2 logit, 5e-3 probability, KL 2e-4). llama.cpp's
// batch and token-by-token paths agree with each other bit for bit. The bugs listed in the fixtures'
// sensitivity.json move logits by 0.98 to 33.
// An MoE adds one more way for last-bit differences to show: a router whose k-th and (k+1)-th experts are
// nearly tied picks the other expert on the other engine, and that position's logits move by up to a few
// units, the positions after it less (they attend to its K/V). Measured on the trained default model: at the
// one step that moved by 2.6, layer 2's 2nd and 3rd router probabilities were 5e-4 apart; our own executors
// agree exactly there. So each sequence may have a few steps outside the bounds (at most MAX_OUTSIDE of them,
// or 2 in a short one), greedy argmax must agree until the first such step, and a real bug moves every step
// (sensitivity.json: 0.98 to 33).
const MAX_LOGIT_DIFF = 0.15;
const MAX_PROB_DIFF = 1e-2;
const MAX_KL = 1e-3;
const MAX_OUTSIDE = 0.25;
const outsideAllowed = (n: number) => Math.max(2, Math.floor(MAX_OUTSIDE * n));

describe('llama.cpp parity: the default model exported to GGUF', () => {
  const out = mkdtempSync(join(tmpdir(), 'moe-edge-parity-'));
  let llama: LlamaSession;
  let ours: LocalModel;

  beforeAll(async () => {
    // the peers live in their own npm project (bench/peers); install them when CI or a person has not yet
    if (!llamaInstalled()) execFileSync('npm', ['run', 'setup:peers'], { cwd: ROOT, stdio: 'inherit', timeout: 300_000 });
    await exportGgufFile(MODEL, join(out, 'default.gguf'));
    ours = await loadTextModel(fsSource(MODEL), await makeKernels());
    llama = await openLlama(join(out, 'default.gguf'), { contextSize: ours.contextLength });
  }, 600_000);
  afterAll(async () => {
    await llama?.dispose();
    rmSync(out, { recursive: true, force: true });
  });

  const encode = (p: (typeof PROMPTS)[number]) => (p.chat ? ours.encodeChat([{ role: 'user', content: p.text }]) : ours.encode(p.text));

  // plain text only: a chat prompt's ids come from our template renderer, which llama.cpp does not share
  it.each(PROMPTS.filter((p) => !p.chat))('tokenizes $text as llama.cpp does', (p) => {
    const g = ours.manifest.generation;
    const bos = g.addBos && g.bosTokenId !== null ? [g.bosTokenId] : [];
    expect([...bos, ...llama.model.tokenize(p.text, false)]).toEqual(encode(p));
  });

  const within = (c: { logit: number; prob: number; kl: number }) => c.logit <= MAX_LOGIT_DIFF && c.prob <= MAX_PROB_DIFF && c.kl <= MAX_KL;

  it.each(PROMPTS)(`greedy: the same ${STEPS} tokens and distributions for $text`, async (p) => {
    const prompt = encode(p);
    const eos = ours.manifest.generation.eosTokenIds;
    const ref = await llamaGreedy(llama, prompt, STEPS, eos);
    // our engine, token by token over the same prefix (decode path)
    const rows = await scoreTokens(ours, [...prompt, ...ref.tokens.slice(0, -1)], 'decode');
    const steps = rows.slice(prompt.length - 1);
    const ok = steps.map((row, i) => within(compare(ref.steps[i], row)) && argmax(row) === ref.tokens[i]);
    expect(ok.filter((x) => !x).length, `steps within the bounds: ${ok.map(Number).join('')}`).toBeLessThanOrEqual(outsideAllowed(ok.length));
    // greedy sequences agree up to the first step outside the bounds (all of them when there is none)
    const upTo = ok.indexOf(false) < 0 ? ref.tokens.length : ok.indexOf(false);
    expect(steps.slice(0, upTo).map(argmax)).toEqual(ref.tokens.slice(0, upTo));
    // and model.generate (prefill in chunks, then decode; what the Worker runs) emits the same text that far
    const gen = ours.generate({ promptTokens: prompt, maxTokens: Math.max(1, upTo), sampling: { temperature: 0, topP: 1, topK: 0 }, stop: [] });
    let text = '';
    let r = await gen.next();
    for (; !r.done; r = await gen.next()) text += r.value.text;
    const expected = ref.tokens.slice(0, Math.max(1, upTo));
    if (upTo > 0) {
      const content = eos.includes(expected.at(-1)!) ? expected.slice(0, -1) : expected;
      // (the streaming decoder holds back a trailing incomplete UTF-8 sequence, which decodes to U+FFFD at once)
      expect(text).toBe(ours.codec!.decode(content).replace(/\uFFFD+$/, ''));
    }
  });

  it('prefill logits of one batch match too (llama.cpp evaluates the whole prompt at once)', async () => {
    const tokens = encode(PROMPTS[0]).concat(encode(PROMPTS[2]).slice(1));
    const ref = await llamaLogits(llama, tokens);
    const mine = await scoreTokens(ours, tokens, 'prefill');
    const ok = ref.map((row, i) => argmax(mine[i]) === argmax(row) && compare(row, mine[i]).logit <= MAX_LOGIT_DIFF);
    expect(ok.filter((x) => !x).length, `positions within the bounds: ${ok.map(Number).join('')}`).toBeLessThanOrEqual(outsideAllowed(ok.length));
  });

  it('the fixture checkpoint converted and exported by us gives llama.cpp\'s reference logits exactly', async () => {
    const dir = sharedPath('fixtures', 'mixtral');
    await convert({ inDir: dir, outDir: join(out, 'fixture'), quant: 'q8_0', warn: () => {} });
    await exportGgufFile(join(out, 'fixture'), join(out, 'fixture.gguf'));
    const ref = JSON.parse(readFileSync(join(dir, 'reference-q8_0.json'), 'utf8')) as { tokens: number[]; logits: number[][] };
    const s = await openLlama(join(out, 'fixture.gguf'), { contextSize: 128 });
    try {
      const rows = await llamaLogits(s, ref.tokens);
      let worst = 0;
      rows.forEach((row, i) => row.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - Math.fround(ref.logits[i][j]))); }));
      expect(worst).toBe(0);
    } finally {
      await s.dispose();
    }
  });
});

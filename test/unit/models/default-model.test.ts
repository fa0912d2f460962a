// The committed default model (models/default) against what its training pipeline recorded in eval.json:
// the engine's per-token losses on held-out excerpts match PyTorch's f32 numbers, the experts specialise
// by domain, held-out sums come out right, and the model fits the isolate's budget.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LocalModel } from '../../../src/engine/load';
import { loadTextModel } from '../../../src/engine/load';
import { fsSource } from '../../../src/store/source-fs';
import { makeKernels } from '../../../tools/kernels-node';
import { scoreTokens } from '../../../tools/score';
import { top2Shares, withCounting } from '../../../models/train/engine-probes';

const DIR = 'models/default';
interface Excerpt { text: string; tokens: number[]; nll: number[] }
interface Eval {
  excerpts: Record<string, Excerpt>;
  samples: { chats: { messages: { role: 'user'; content: string }[]; reply: string }[] };
  sums: { engine_q8_0: number; total: number; answers: { prompt: string; expected: string; engine: string; ok: boolean }[] };
  model: { bytes_total: number };
}
const evalJson = JSON.parse(readFileSync(`${DIR}/eval.json`, 'utf8')) as Eval;
const DOMAINS = Object.keys(evalJson.excerpts);

/** -log softmax(row)[target] in f64. */
function nllAt(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return -(row[target] - max - Math.log(sum));
}

describe('default model', () => {
  let model: LocalModel;
  const engine: Record<string, { nll: number[]; counts: number[][] }> = {};

  beforeAll(async () => {
    model = await loadTextModel(fsSource(DIR), await makeKernels());
    const bos = model.manifest.generation.bosTokenId!;
    for (const d of DOMAINS) {
      const { model: counted, counter } = withCounting(model);
      const seq = [bos, ...evalJson.excerpts[d].tokens];
      const logits = await scoreTokens(counted, seq, 'prefill');
      engine[d] = { nll: seq.slice(1).map((t, i) => nllAt(logits[i], t)), counts: counter.counts };
    }
  });

  it('is the trained q8_0 MoE and fits the isolate budget', () => {
    const m = model.manifest;
    expect(m.name).toBe('default');
    expect(m.quant).toEqual({ trunk: 'q8_0', experts: 'q8_0' });
    expect(m.architecture).toMatchObject({ modelType: 'mixtral', numExperts: 8, topK: 2 });
    const bytes = Object.values(m.objects).reduce((s, o) => s + o.bytes, 0);
    expect(bytes).toBe(evalJson.model.bytes_total);
    expect(bytes).toBeLessThan(25 * 2 ** 20);
  });

  it.each(DOMAINS)('%s: engine q8_0 per-token loss tracks PyTorch f32 on a held-out excerpt', (d) => {
    const ref = evalJson.excerpts[d].nll;
    const ours = engine[d].nll;
    expect(ours).toHaveLength(ref.length);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    // perplexity within 2%, as the card claims for the whole held-out split
    expect(Math.abs(Math.exp(mean(ours) - mean(ref)) - 1)).toBeLessThan(0.02);
    // and token by token, not only on average
    expect(mean(ours.map((x, i) => Math.abs(x - ref[i])))).toBeLessThan(0.05);
  });

  it('routes each domain mostly to its own experts', () => {
    const a = model.manifest.architecture;
    const uniform = a.topK / a.numExperts;
    const shares = Object.fromEntries(DOMAINS.map((d) => [d, top2Shares(engine[d].counts)]));
    for (const d of DOMAINS) {
      const meanShare = shares[d].reduce((s, l) => s + l.share, 0) / a.numLayers;
      expect(meanShare, `${d}: mean top-2 share`).toBeGreaterThan(uniform + 0.15);
    }
    // the domains do not all favour the same experts: in some layer their top-2 sets differ
    const key = (d: string, l: number) => [...shares[d][l].top2].sort().join(',');
    const differs = Array.from({ length: a.numLayers }, (_, l) => new Set(DOMAINS.map((d) => key(d, l))).size > 1);
    expect(differs.some(Boolean)).toBe(true);
  });

  // The card's sums figure (eval.json) must be what this engine answers, and beat chance: every recorded greedy
  // answer to the 100 held-out small sums is reproduced, and more are right than the best constant answer gets.
  it('answers the held-out small sums as recorded, more often than chance', async () => {
    const answers = evalJson.sums.answers;
    expect(answers).toHaveLength(evalJson.sums.total);
    let correct = 0;
    for (const s of answers) {
      let text = '';
      const gen = model.generate({ promptTokens: model.encode(s.prompt), maxTokens: 8, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: ['\n'] });
      for (let r = await gen.next(); !r.done; r = await gen.next()) text += r.value.text;
      expect(text.trim(), s.prompt).toBe(s.engine);
      if (text.trim() === s.expected) correct++;
    }
    expect(correct).toBe(evalJson.sums.engine_q8_0);
    const counts = new Map<string, number>();
    for (const s of answers) counts.set(s.expected, (counts.get(s.expected) ?? 0) + 1);
    expect(correct).toBeGreaterThan(Math.max(...counts.values()));
  });

  // the chat replies the card (and the README's sample exchange) show are what the engine says, greedily
  it('reproduces the chat replies recorded in its card', async () => {
    expect(evalJson.samples.chats.length).toBeGreaterThan(0);
    for (const c of evalJson.samples.chats) {
      let text = '';
      const gen = model.generate({ promptTokens: model.encodeChat(c.messages), maxTokens: 96, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: [] });
      for (let r = await gen.next(); !r.done; r = await gen.next()) text += r.value.text;
      expect(text, c.messages.at(-1)!.content).toBe(c.reply);
    }
  });

  it('tokenizes digits one by one and round-trips text', () => {
    const bos = model.manifest.generation.bosTokenId;
    const ids = model.encode('417 + 86 = 503').filter((t) => t !== bos);
    const digits = ids.map((t) => model.codec!.decode([t])).filter((s) => /\d/.test(s));
    expect(digits).toEqual(['4', '1', '7', '8', '6', '5', '0', '3']);
    for (const text of ['ROMEO:\nBut soft!', 'def f(x):\n    return x  # naïve 🙂\n']) {
      expect(model.codec!.decode(model.encode(text))).toBe(text);
    }
  });
});

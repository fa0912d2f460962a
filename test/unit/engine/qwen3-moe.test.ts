// qwen3_moe has no llama.cpp fixture: it is checked against an independent float64 forward pass written
// from Hugging Face's published Qwen3-MoE formulas (data/qwen3_moe/make_reference.py, PyTorch) on a tiny
// random BF16 checkpoint: per-head q/k RMSNorm, head_dim 16 != hidden 32 / 4 heads, GQA, top-3 of 8 with
// norm_topk_prob. Same bar as the llama.cpp fixtures: max abs logit diff <= 1e-3, prefill and decode.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExpertBatch, ExpertExecutor } from '../../../src/engine/experts';
import { loadTextModel, type LocalModel } from '../../../src/engine/load';
import { argmax } from '../../../src/engine/sampler';
import { architectureFromHf } from '../../../tools/convert/hf-config';
import { fsSource } from '../../../src/store/source-fs';
import { convert } from '../../../tools/convert';
import { makeKernels, type ExecutorName } from '../../../tools/kernels-node';
import { scoreTokens } from '../../../tools/score';
import { maxAbsDiff } from '../../helpers/logits';

const DATA = join(__dirname, 'data', 'qwen3_moe');

interface Reference {
  tokens: number[];
  logits: number[][];
  routing: Array<{ experts: number[][]; weights: number[][] }>; // per layer, per token: top-k in order
  sensitivity: Record<string, number>;
}
const ref: Reference = JSON.parse(readFileSync(join(DATA, 'reference.json'), 'utf8'));
const config = JSON.parse(readFileSync(join(DATA, 'config.json'), 'utf8'));

/** The real local experts, with every routing decision written down on the way through. */
class RecordingExperts implements ExpertExecutor {
  readonly calls: Array<{ layer: number; routes: ExpertBatch['routes'] }> = [];
  constructor(private readonly inner: ExpertExecutor) {}
  run(b: ExpertBatch) {
    this.calls.push({ layer: b.layer, routes: b.routes.map((slots) => slots.map((r) => ({ ...r }))) });
    return this.inner.run(b);
  }
}

const EXECUTORS: ExecutorName[] = ['ts-ref', 'wasm-scalar', 'wasm-simd', 'wasm-relaxed'];

describe('qwen3_moe against an independent float64 forward pass', () => {
  const out = mkdtempSync(join(tmpdir(), 'moe-edge-qwen3_moe-'));
  beforeAll(async () => {
    for (const quant of ['f32', 'q8_0'] as const) await convert({ inDir: DATA, outDir: join(out, quant), quant, warn: () => {} });
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('reads the published config keys into flags of the one forward pass', () => {
    expect(architectureFromHf(config)).toMatchObject({
      modelType: 'qwen3_moe', hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 16, qkNorm: 'per_head',
      numExperts: 8, topK: 3, expertFfnSize: 32, normTopKProb: true, rmsNormEps: 1e-6, ropeTheta: 1e6, ropeLayout: 'neox',
      qkvBias: false, sharedExpertFfnSize: 0, routerTopKBeforeSoftmax: false,
    });
    expect(architectureFromHf({ ...config, norm_topk_prob: undefined }).normTopKProb).toBe(false); // HF default
    expect(() => architectureFromHf({ ...config, mlp_only_layers: [1] })).toThrow(/mlp_only_layers/);
    expect(() => architectureFromHf({ ...config, decoder_sparse_step: 2 })).toThrow(/decoder_sparse_step/);
    expect(() => architectureFromHf({ ...config, attention_bias: true })).toThrow(/attention_bias/);
  });

  it('the reference would catch the bugs this test is about', () => {
    // how far a missing per-head q/k norm, a toggled renormalisation or the wrong RoPE pairing move the logits
    for (const bug of ['no_qk_norm', 'flip_norm_topk', 'rope_interleaved']) expect(ref.sensitivity[bug]).toBeGreaterThan(0.1);
  });

  describe.each(EXECUTORS)('executor %s', (executor) => {
    let f32: LocalModel;
    let q8: LocalModel;
    beforeAll(async () => {
      f32 = await loadTextModel(fsSource(join(out, 'f32')), await makeKernels(executor));
      q8 = await loadTextModel(fsSource(join(out, 'q8_0')), await makeKernels(executor));
    });

    it.each(['prefill', 'decode'] as const)('f32 weights, %s: max abs logit diff <= 1e-3', async (mode) => {
      const logits = await scoreTokens(f32, ref.tokens, mode);
      expect(logits).toHaveLength(ref.tokens.length);
      expect(maxAbsDiff(logits, ref.logits)).toBeLessThanOrEqual(1e-3);
    });

    it('routes every token to the reference experts with its renormalised weights', async () => {
      const rec = new RecordingExperts(f32.expertExecutor);
      await scoreTokens({ ...f32, expertExecutor: rec }, ref.tokens, 'prefill');
      expect(rec.calls.map((c) => c.layer)).toEqual([0, 1]);
      for (const { layer, routes } of rec.calls) {
        expect(routes.map((slots) => slots.map((r) => r.expert))).toEqual(ref.routing[layer].experts);
        routes.forEach((slots, t) => slots.forEach((r, s) => expect(Math.abs(r.weight - ref.routing[layer].weights[t][s])).toBeLessThan(1e-5)));
      }
    });

    // No llama.cpp logits for q8_0 here, so no exact bar: quantisation noise (measured: median 0.06, max 0.49
    // over 24 positions) must leave every prediction in place, and prefill must equal decode.
    it('q8_0 weights: same argmax as the float reference at every position, prefill == decode', async () => {
      const prefill = await scoreTokens(q8, ref.tokens, 'prefill');
      const decode = await scoreTokens(q8, ref.tokens, 'decode');
      expect(decode.map(argmax)).toEqual(ref.logits.map(argmax));
      expect(maxAbsDiff(prefill, decode.map((r) => Array.from(r)))).toBeLessThanOrEqual(1e-5);
      const perPosition = ref.logits.map((row, i) => maxAbsDiff([decode[i]], [row])).sort((a, b) => a - b);
      expect(perPosition[perPosition.length >> 1]).toBeLessThanOrEqual(0.1);
    });
  });
});

// An expert shard's side, in process over models/default: shard-layout.json is refused whole when it cannot be
// used with the model; the slice a shard loads is its entry's; its answers are the front's own computation (an
// expert call equals LocalExperts on the same rows, the head's embedding rows and logits equal the local head);
// and whatever it cannot serve becomes an error frame with the right status, never a throw.
import { beforeAll, describe, expect, it } from 'vitest';
import { LocalExperts } from '../../../src/engine/experts';
import { localHead } from '../../../src/engine/head';
import { loadWeights, type ModelWeights } from '../../../src/engine/model';
import { readTaggedManifest } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import type { Kernels } from '../../../src/kernels/types';
import type { Manifest } from '../../../src/format/manifest';
import { encodeActivations } from '../../../src/protocol/activations';
import { decodeFrame, encodeHeadRequest, encodeRequest } from '../../../src/protocol/expert-wire';
import { answerFrame } from '../../../src/shard/answer';
import { NO_SHARD, parseShardLayout, shardLayoutDocument, ShardLayoutError } from '../../../src/shard/layout';
import { loadShardSlice, type ShardSlice } from '../../../src/shard/slice';
import type { ObjectSource } from '../../../src/store/source';

const MODEL = 'models/default';
let k: Kernels;
let manifest: Manifest;
let tag: Uint8Array;
let all: ModelWeights;
let slice: ShardSlice;

/** The model folder plus a layout object, as R2 holds them beside the model. */
function withLayout(source: ObjectSource, name: string, doc: unknown): ObjectSource {
  return { ...source, get: (n) => (n === name ? Promise.resolve(new TextEncoder().encode(JSON.stringify(doc))) : source.get(n)), describe: () => source.describe() };
}

beforeAll(async () => {
  k = await loadNodeKernels();
  const src = fsSource(MODEL);
  ({ manifest, tag } = await readTaggedManifest(src));
  all = await loadWeights(k, src, manifest);
  const L = manifest.architecture.numLayers;
  const doc = shardLayoutDocument(manifest.name, [
    { binding: 'SHARD_0', worker: 'w-shard-0', layers: Array.from({ length: L }, () => [0, 2]) },
    { binding: 'SHARD_1', worker: 'w-shard-1', layers: Array.from({ length: L }, () => [1, 3]), head: true },
  ]);
  slice = await loadShardSlice(k, withLayout(src, 'layout.json', doc), 'layout.json', 'SHARD_1');
});

describe('shard-layout.json', () => {
  const arch = { numLayers: 2, numExperts: 4 };
  const doc = (shards: unknown[], model = 'm') => ({ format: 'moe-edge-shard-layout/1', model, shards });
  const shard = (binding: string, layers: Record<string, number[]>, extra = {}) => ({ binding, worker: binding.toLowerCase().replace(/_/g, '-'), layers, ...extra });

  it('gives every held expert one owner and the rest none', () => {
    const l = parseShardLayout(doc([shard('SHARD_0', { 0: [1] }), shard('SHARD_1', { 1: [3, 0] }, { head: true })]), 'm', arch);
    expect([...l.owner]).toEqual([NO_SHARD, 0, NO_SHARD, NO_SHARD, 1, NO_SHARD, NO_SHARD, 1]);
    expect(l.slices[1][1]).toEqual([0, 3]);
    expect(l.headShard).toBe(1);
  });

  it.each([
    ['another model', doc([shard('SHARD_0', { 0: [1] })], 'other'), /planned for model other/],
    ['two owners', doc([shard('SHARD_0', { 0: [1] }), shard('SHARD_1', { 0: [1] })]), /held by both SHARD_0 and SHARD_1/],
    ['an unknown expert', doc([shard('SHARD_0', { 0: [4] })]), /expert 0\/4 does not exist/],
    ['an unknown layer', doc([shard('SHARD_0', { 2: [0] })]), /layer 2 does not exist/],
    ['a binding named twice', doc([shard('SHARD_0', {}), shard('SHARD_0', {})]), /named by two shards/],
    ['two heads', doc([shard('SHARD_0', {}, { head: true }), shard('SHARD_1', {}, { head: true })]), /one shard at most/],
    ['a lower-case binding', doc([shard('shard0', {})]), /upper case/],
    ['an unknown key', doc([{ ...shard('SHARD_0', {}), extra: 1 }]), /Unrecognized key/],
  ])('refuses %s (500 invalid_shard_layout)', (_, json, message) => {
    const e = (() => {
      try {
        parseShardLayout(json, 'm', arch);
      } catch (err) {
        return err;
      }
    })() as ShardLayoutError;
    expect(e).toBeInstanceOf(ShardLayoutError);
    expect(e.status).toBe(500);
    expect(e.code).toBe('invalid_shard_layout');
    expect(e.message).toMatch(message);
  });
});

describe("a shard's slice and answers", () => {
  it('loads only its entry of the layout, and the head when the layout gives it', () => {
    expect(slice.count).toBe(2 * manifest.architecture.numLayers);
    expect(slice.experts[0].flatMap((w, e) => (w ? [e] : []))).toEqual([1, 3]);
    expect(slice.head).not.toBeNull();
  });

  it('an expert call equals LocalExperts on the same rows', () => {
    const a = manifest.architecture;
    const H = a.hiddenSize;
    const nTok = 3;
    const x = new Float32Array(nTok * H).map((_, i) => Math.sin(i * 0.37));
    const pairs = [[0, 1], [1, 3], [2, 1], [2, 3]] as const;
    const reply = decodeFrame(answerFrame(k, slice, encodeRequest({
      requestId: 7, modelTag: tag, combine: false, resultDType: 'f32', layer: 1, hidden: H, nTok,
      tokens: pairs.map((p) => p[0]), experts: pairs.map((p) => p[1]), weights: pairs.map(() => 0.5),
      activations: encodeActivations(x, 'q8_0'),
    })).frame);
    expect(reply.kind).toBe('result');
    // the front's own computation: each pair's expert on its token row, through the heap
    const K = a.topK;
    const xp = k.heap.alloc(nTok * H * 4);
    const out = k.heap.alloc(nTok * K * H * 4);
    k.heap.f32(xp, nTok * H).set(x);
    const routes = Array.from({ length: nTok }, (_, t) => pairs.filter((p) => p[0] === t).map((p) => ({ expert: p[1], weight: 0.5 })));
    new LocalExperts(k, all).runJobs({ layer: 1, x: xp, nTok, routes, scores: 0, out }, routes.flatMap((slots, token) => slots.map((r, slot) => ({ token, slot, expert: r.expert }))));
    const want = k.heap.f32(out, nTok * K * H);
    const got = (reply as { values: Float32Array }).values;
    const slotOf = new Map<number, number>();
    pairs.forEach(([t], i) => {
      const slot = slotOf.get(t) ?? 0;
      slotOf.set(t, slot + 1);
      expect(got.subarray(i * H, i * H + H)).toEqual(want.subarray((t * K + slot) * H, (t * K + slot + 1) * H));
    });
    k.heap.release(out);
    k.heap.release(xp);
  });

  it("the head's embedding rows and logits equal the local head's", () => {
    const a = manifest.architecture;
    const H = a.hiddenSize;
    const tokens = [3, 17, 5];
    const head = localHead(k, all.embed!, all.output!);
    const xp = k.heap.alloc(tokens.length * H * 4);
    const lp = k.heap.alloc(tokens.length * a.vocabSize * 4);
    head.embed(tokens, xp);
    const rows = k.heap.f32(xp, tokens.length * H).slice();
    head.logits(xp, tokens.length, lp);
    const logits = k.heap.f32(lp, tokens.length * a.vocabSize).slice();
    k.heap.release(lp);
    k.heap.release(xp);
    const embed = decodeFrame(answerFrame(k, slice, encodeHeadRequest({ requestId: 1, modelTag: tag, op: 'embed', hidden: H, tokens })).frame);
    const lg = decodeFrame(answerFrame(k, slice, encodeHeadRequest({ requestId: 2, modelTag: tag, op: 'logits', hidden: H, rows })).frame);
    expect(embed).toMatchObject({ kind: 'result', count: 3, hidden: H });
    expect(lg).toMatchObject({ kind: 'result', count: 3, hidden: a.vocabSize });
    expect((embed as { values: Float32Array }).values).toEqual(rows);
    expect((lg as { values: Float32Array }).values).toEqual(logits);
  });

  it.each([
    ['an expert it does not hold', () => encodeRequest({ requestId: 3, modelTag: tag, combine: false, resultDType: 'f32', layer: 0, hidden: manifest.architecture.hiddenSize, nTok: 1, tokens: [0], experts: [0], weights: [1], activations: encodeActivations(new Float32Array(manifest.architecture.hiddenSize), 'q8_0') }), 404, 'expert_not_served'],
    ['another model', () => encodeHeadRequest({ requestId: 4, modelTag: new Uint8Array(8), op: 'embed', hidden: manifest.architecture.hiddenSize, tokens: [1] }), 409, 'model_mismatch'],
    ['a token outside the vocabulary', () => encodeHeadRequest({ requestId: 5, modelTag: tag, op: 'embed', hidden: manifest.architecture.hiddenSize, tokens: [manifest.architecture.vocabSize] }), 400, 'bad_frame'],
    ['garbage', () => new Uint8Array([1, 2, 3, 4, 5]), 400, 'bad_frame'],
  ])('%s: an error frame (%i %s), not a throw', (_, frame, status, code) => {
    const a = answerFrame(k, slice, frame());
    expect(a.error).toBe(true);
    expect(decodeFrame(a.frame)).toMatchObject({ kind: 'error', status, code });
  });
});

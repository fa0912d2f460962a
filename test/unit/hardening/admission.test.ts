// The admission bound is a bound: the heap a generation really takes at its peak (KV cache, activations and
// every kernel's scratch, instrumented at each alloc) stays within generationBytes(arch, prompt + max_tokens),
// for the local path and the split path (hot set, substitute); tickets count concurrent generations and are
// given back exactly once, also for a generation closed before it started; a chat template that refuses the
// messages is the client's 400, not a 500.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { Generation } from '../../../src/engine/api';
import { loadTextModel } from '../../../src/engine/load';
import { HfTextCodec } from '../../../src/engine/tokenizer';
import { InvalidRequestError } from '../../../src/common/errors';
import { fsSource } from '../../../src/store/source-fs';
import { parseHotExperts } from '../../../src/hotset/spec';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { peakDuring } from '../../helpers/heap-peak';
import { Admission, generationBytes, MemoryBudgetExceededError, MemoryBusyError, positionsThatFit, releasedWhenDone, TooManyGenerationsError } from '../../../src/runtime/admission';
import { ServedModel } from '../../../src/runtime/served-model';
import { kvCacheBytes } from '../../../src/engine/kv-cache';

const MODEL = 'models/default';

async function drain(gen: Generation): Promise<void> {
  for (let r = await gen.next(); !r.done; r = await gen.next());
}

describe('generationBytes bounds the real peak', () => {
  it.each([1, 63, 64, 65, 200])('local experts, %i prompt tokens + 8 generated', async (promptLen) => {
    const k = await loadNodeKernels();
    const model = await loadTextModel(fsSource(MODEL), k);
    const idle = k.heap.usedBytes;
    const tokens = Array.from({ length: promptLen }, (_, i) => 3 + (i % 50));
    const peak = await peakDuring(k, () => drain(model.generate({ promptTokens: tokens, maxTokens: 8, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: [] })));
    const bound = generationBytes(model.manifest.architecture, promptLen + 8);
    expect(peak - idle).toBeGreaterThan(0);
    expect(peak - idle).toBeLessThanOrEqual(bound);
    expect(peak - idle).toBeGreaterThan(bound / 4); // a bound, but not a wild one
    expect(k.heap.usedBytes).toBe(idle);
  });

  it('split experts (half hot, cold ones substituted), 70 prompt tokens + 8', async () => {
    const k = await loadNodeKernels();
    const model = await ServedModel.load(fsSource(MODEL), k, { hotExperts: parseHotExperts('50%'), budgetBytes: null });
    const idle = k.heap.usedBytes;
    const tokens = Array.from({ length: 70 }, (_, i) => 3 + (i % 50));
    const moe = { policy: 'substitute' as const, degradedPolicy: 'substitute' as const, backend: null };
    const peak = await peakDuring(k, () => drain(model.generate({ promptTokens: tokens, maxTokens: 8, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: [], moe })));
    expect(peak - idle).toBeLessThanOrEqual(generationBytes(model.manifest.architecture, 78));
    expect(model.hot.bytes).toBe(idle); // the weights are what the heap holds when idle
  });

  it.each(['f16', 'q8_0', 'q4_0'] as const)('a %s KV cache: 70 prompt tokens + 8, local and split', async (kvCacheType) => {
    const k = await loadNodeKernels();
    const model = await loadTextModel(fsSource(MODEL), k, { kvCacheType });
    const a = model.manifest.architecture;
    const idle = k.heap.usedBytes;
    const tokens = Array.from({ length: 70 }, (_, i) => 3 + (i % 50));
    const sampling = { temperature: 0, topP: 1, topK: 0 };
    const peak = await peakDuring(k, () => drain(model.generate({ promptTokens: tokens, maxTokens: 8, sampling, stop: [] })));
    expect(peak - idle).toBeLessThanOrEqual(generationBytes(a, 78, kvCacheType));
    expect(peak - idle).toBeGreaterThan(generationBytes(a, 78, kvCacheType) / 4);
    expect(generationBytes(a, 78, kvCacheType)).toBeLessThan(generationBytes(a, 78, 'f32'));
    const served = await ServedModel.load(fsSource(MODEL), k, { hotExperts: parseHotExperts('50%'), budgetBytes: null, kvCacheType });
    const idle2 = k.heap.usedBytes;
    const moe = { policy: 'substitute' as const, degradedPolicy: 'substitute' as const, backend: null };
    const peak2 = await peakDuring(k, () => drain(served.generate({ promptTokens: tokens, maxTokens: 8, sampling, stop: [], moe })));
    expect(peak2 - idle2).toBeLessThanOrEqual(generationBytes(a, 78, kvCacheType));
    expect(served.memory.kvCacheType).toBe(kvCacheType);
  });

  it('a model whose heads are not whole 32-blocks refuses a q8_0 / q4_0 cache by name; f16 is fine', () => {
    const a = { modelType: 'mixtral', headDim: 16, numKvHeads: 2, numLayers: 2 } as never;
    expect(() => generationBytes({ ...(a as object), numHeads: 4, hiddenSize: 64, expertFfnSize: 32, sharedExpertFfnSize: 0, numExperts: 8, topK: 2, vocabSize: 260 } as never, 10, 'q8_0')).toThrow(/q8_0 KV cache needs a head dimension that is a multiple of 32; this mixtral model has 16/);
    expect(kvCacheBytes(a, 10, 'f16')).toBe(2 * 2 * 10 * 2 * 16 * 2);
    expect(kvCacheBytes({ ...(a as object), headDim: 64 } as never, 10, 'q8_0')).toBe(2 * 2 * (10 * 128 + (10 * 128 / 32) * 4));
  });

  it('positionsThatFit is the largest count whose bound fits', async () => {
    const model = await loadTextModel(fsSource(MODEL), await loadNodeKernels());
    const a = model.manifest.architecture;
    const room = generationBytes(a, 300) + 10;
    const n = positionsThatFit(a, room);
    expect(n).toBe(300);
    expect(positionsThatFit(a, generationBytes(a, 1) - 1)).toBe(0);
  });
});

describe('Admission', () => {
  const arch = { numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, hiddenSize: 64, expertFfnSize: 64, sharedExpertFfnSize: 0, numExperts: 8, topK: 2, vocabSize: 304 } as never;
  const shape = (promptTokens: number, maxTokens: number) => ({ promptTokens, maxTokens, promptParam: 'prompt', maxTokensParam: 'max_tokens' });

  it('counts concurrent generations; a ticket is given back once however often release() is called', () => {
    const a = new Admission();
    const limits = { maxConcurrentGenerations: 2, isolateMemoryBytes: null };
    const t1 = a.admit(limits, shape(1, 1), null);
    const t2 = a.admit(limits, shape(1, 1), null);
    expect(() => a.admit(limits, shape(1, 1), null)).toThrow(TooManyGenerationsError);
    t1.release();
    t1.release();
    expect(a.active).toBe(1);
    a.admit(limits, shape(1, 1), null).release();
    t2.release();
    expect(a.active).toBe(0);
  });

  it('memory: too big alone -> MemoryBudgetExceededError (400); too big beside others -> MemoryBusyError (503), per heap', () => {
    const a = new Admission();
    const heap = {};
    const one = generationBytes(arch, 40);
    const limits = { maxConcurrentGenerations: null, isolateMemoryBytes: 1000 + 1.5 * one };
    const memory = { heap, arch, weightsBytes: 1000 };
    const e = (() => {
      try {
        a.admit(limits, shape(10, 400), memory);
      } catch (err) {
        return err as MemoryBudgetExceededError;
      }
    })();
    expect(e).toBeInstanceOf(MemoryBudgetExceededError);
    expect([e!.status, e!.param, e!.code]).toEqual([400, 'max_tokens', 'memory_budget_exceeded']);
    const t = a.admit(limits, shape(10, 30), memory);
    expect(() => a.admit(limits, shape(10, 30), memory)).toThrow(MemoryBusyError);
    a.admit(limits, shape(10, 30), { ...memory, heap: {} }).release(); // another model's heap has its own room
    t.release();
    a.admit(limits, shape(10, 30), memory).release();
  });
});

describe('releasedWhenDone', () => {
  async function* steps(log: string[]): AsyncGenerator<{ text: string }, { finishReason: 'stop'; promptTokens: number; completionTokens: number }, void> {
    try {
      yield { text: 'a' };
      yield { text: 'b' };
      return { finishReason: 'stop', promptTokens: 1, completionTokens: 2 };
    } finally {
      log.push('finally');
    }
  }

  it('memory at a q8_0 KV cache: the 400 uses the q8_0 numbers (more positions fit than at f32)', () => {
    const arch32 = { modelType: 'mixtral', numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32, hiddenSize: 128, expertFfnSize: 64, sharedExpertFfnSize: 0, numExperts: 8, topK: 2, vocabSize: 304 } as never;
    const shape = (promptTokens: number, maxTokens: number) => ({ promptTokens, maxTokens, promptParam: 'prompt', maxTokensParam: 'max_tokens' });
    const one = generationBytes(arch32, 40, 'q8_0');
    const room = Math.floor(1.5 * one);
    const limits = { maxConcurrentGenerations: null, isolateMemoryBytes: 1000 + room };
    const memory = { heap: {}, arch: arch32, weightsBytes: 1000, kvCacheType: 'q8_0' as const };
    const fits = positionsThatFit(arch32, room, 'q8_0');
    expect(fits).toBeGreaterThan(positionsThatFit(arch32, room, 'f32'));
    const a = new Admission();
    expect(() => a.admit(limits, shape(10, fits - 9), memory)).toThrow(new RegExp(`at most ${fits} tokens fit`));
    a.admit(limits, shape(10, fits - 10), memory).release();
  });

  it('releases when drained, when closed early, when closed before it started, and when it throws', async () => {
    let released = 0;
    const wrap = (g: Generation) => releasedWhenDone(g, () => released++);
    const log: string[] = [];
    await drain(wrap(steps(log) as Generation));
    expect(released).toBe(1);
    const early = wrap(steps(log) as Generation);
    await early.next();
    await early.return(undefined as never);
    await early.return(undefined as never);
    expect(released).toBe(2);
    await wrap(steps(log) as Generation).return(undefined as never);
    expect(released).toBe(3);
    const failing = wrap((async function* () {
      throw new Error('prefill failed');
    })() as unknown as Generation);
    await expect(failing.next()).rejects.toThrow('prefill failed');
    expect(released).toBe(4);
    expect(log).toEqual(['finally', 'finally']); // the never-started one had nothing to clean up
  });
});

describe('chat templates that refuse the messages', () => {
  it('raise_exception in the template -> InvalidRequestError (400) on messages', async () => {
    const json = JSON.parse(await readFile(`${MODEL}/tokenizer.json`, 'utf8'));
    const config = JSON.parse(await readFile(`${MODEL}/tokenizer_config.json`, 'utf8'));
    const template = "{% for m in messages %}{% if m['role'] == 'system' and not loop.first %}{{ raise_exception('System message must come first') }}{% endif %}{{ m['content'] }}{% endfor %}";
    const codec = new HfTextCodec({ json, config }, template, { id: null, add: false });
    expect(codec.encodeChat([{ role: 'user', content: 'hi' }]).length).toBeGreaterThan(0);
    let err: unknown;
    try {
      codec.encodeChat([{ role: 'user', content: 'hi' }, { role: 'system', content: 'late' }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ status: 400, param: 'messages', code: 'invalid_messages' });
    expect((err as Error).message).toContain('System message must come first');
  });
});

// Admission of what issue 17 adds: a generation that scores its prompt (`echo` with logprobs) holds a prefill chunk's
// logits rows, and its real peak heap stays within generationBytes(..., 'all') although it exceeds the 'last' bound;
// a grammar's bytes (extraBytes) count against the same budget.
import { describe, expect, it } from 'vitest';
import { loadTextModel } from '../../../src/engine/load';
import { fsSource } from '../../../src/store/source-fs';
import { peakDuring } from '../../helpers/heap-peak';
import { Admission, generationBytes, MemoryBudgetExceededError } from '../../../src/runtime/admission';
import { makeKernels } from '../../../tools/kernels-node';

describe('admission of prompt scoring and grammars', () => {
  it("a prompt-scoring generation's peak is within the 'all' bound and above the 'last' one", async () => {
    const model = await loadTextModel(fsSource('models/default'), await makeKernels());
    const prompt = Array.from({ length: 200 }, (_, i) => 5 + (i % 500));
    const base = model.kernels.heap.usedBytes;
    const peak = await peakDuring(model.kernels, async () => {
      for await (const _ of model.generate({ promptTokens: prompt, maxTokens: 4, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: [], promptLogprobs: true, logprobs: 1 })) void _;
    });
    const used = peak - base;
    const a = model.manifest.architecture;
    expect(used).toBeLessThanOrEqual(generationBytes(a, prompt.length + 4, 'f32', 'all'));
    expect(used).toBeGreaterThan(generationBytes(a, prompt.length + 4, 'f32', 'last'));
  });

  it('extraBytes (a grammar) counts against ISOLATE_MEMORY_MB', async () => {
    const model = await loadTextModel(fsSource('models/default'), await makeKernels());
    const memory = { heap: {}, arch: model.manifest.architecture, weightsBytes: 1 << 20 };
    const shape = { promptTokens: 10, maxTokens: 10, promptParam: 'messages', maxTokensParam: 'max_tokens' };
    const need = generationBytes(memory.arch, 20);
    const limits = { maxConcurrentGenerations: null, isolateMemoryBytes: memory.weightsBytes + need + 1000 };
    new Admission().admit(limits, shape, memory).release();
    expect(() => new Admission().admit(limits, { ...shape, extraBytes: 2000 }, memory)).toThrow(MemoryBudgetExceededError);
  });
});

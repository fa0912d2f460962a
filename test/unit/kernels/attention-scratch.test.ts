// Admission's figures for the attention's scratch are the kernel's own: attentionScratchBytes and
// attentionKvScratchBytes equal the module's attention_scratch / attention_kv_scratch exports for decode and
// prefill calls over short and long contexts, and the bounds cover every call of a generation.
import { describe, expect, it } from 'vitest';
import { attentionKvScratchBound, attentionKvScratchBytes, attentionScratchBound, attentionScratchBytes } from '../../../src/kernels/attention-scratch';
import { loadNodeKernelModules } from '../../../src/kernels/load-node';
import { instantiateKernels } from '../../../src/kernels/wasm';

describe('attention scratch bytes', () => {
  it('f32 cache: equal the kernel module\'s attention_scratch, and the bound covers each context up to its length', async () => {
    const { ex } = instantiateKernels((await loadNodeKernelModules()).simd);
    for (const nHead of [1, 4, 16, 32]) {
      for (const nCtx of [1, 3, 64, 65, 1000, 1024, 4096, 16384, 32768]) {
        expect(attentionScratchBytes(nCtx, nHead), `${nCtx} ${nHead}`).toBe(ex.attention_scratch(nCtx, nHead));
      }
      for (const positions of [1, 70, 1028, 4100, 20000]) {
        const bound = attentionScratchBound(positions, nHead);
        for (let nCtx = 1; nCtx <= positions; nCtx += 7) expect(attentionScratchBytes(nCtx, nHead)).toBeLessThanOrEqual(bound);
        expect(attentionScratchBytes(positions, nHead)).toBeLessThanOrEqual(bound);
      }
    }
  });

  it('equal the kernel module\'s attention_kv_scratch', async () => {
    const { ex } = instantiateKernels((await loadNodeKernelModules()).simd);
    for (const headDim of [32, 64, 128]) {
      for (const group of [1, 2, 4, 8]) {
        for (const nCtx of [1, 3, 64, 65, 1000, 1024, 4096, 32768]) {
          for (const nTok of [1, 7, 64]) {
            if (nTok > nCtx) continue;
            expect(attentionKvScratchBytes(nCtx, headDim, group, nTok), `${nCtx} ${headDim} ${group} ${nTok}`).toBe(ex.attention_kv_scratch(nCtx, headDim, group, nTok));
          }
        }
      }
    }
  });

  it('admission\'s bound covers every call of a generation: each context up to its length, decode and prefill chunks', () => {
    for (const [headDim, group] of [[64, 2], [128, 8], [32, 1]]) {
      for (const positions of [1, 70, 1028, 4100]) {
        const bound = attentionKvScratchBound(positions, headDim, group, 64);
        for (let nCtx = 1; nCtx <= positions; nCtx++) {
          for (const nTok of [1, Math.min(64, nCtx)]) expect(attentionKvScratchBytes(nCtx, headDim, group, nTok)).toBeLessThanOrEqual(bound);
        }
      }
    }
  });
});

// llama.cpp's WASM build (wllama, headless Chromium, 1 thread) on the expert FFN at batch 1, by the same
// difference as llama-ffn.ts: decode time per token of the one- and two-expert synthetic models.
import { median } from '../matvec/measure';
import { startWllama } from '../peers/wllama';
import type { FfnShape } from './ffn';
import { llamaExpertBytes, writeSyntheticPair } from './llama-ffn';

const DECODE = 32; // tokens per call; llama.cpp's own counters time the decode part alone

export async function measureWllamaFfn(dir: string, s: FfnShape, quant: 'q8_0' | 'q4_0', poolBytes: number, rounds: number): Promise<{ us: number; gbps: number; layers: number; msOne: number; msTwo: number }> {
  const files = await writeSyntheticPair(dir, s, quant, poolBytes);
  const one = await startWllama(files.paths[0], 512);
  try {
    const two = await startWllama(files.paths[1], 512);
    try {
      const perToken = async (w: typeof one) => {
        const r = await w.round('a', DECODE);
        return r.decodeMs / r.decodedTokens;
      };
      await perToken(one); // warm-up
      await perToken(two);
      const a: number[] = [];
      const b: number[] = [];
      for (let r = 0; r < rounds; r++) {
        a.push(await perToken(one));
        b.push(await perToken(two));
      }
      const msOne = median(a), msTwo = median(b);
      const us = msTwo > msOne ? ((msTwo - msOne) * 1e3) / files.layers : NaN;
      return { us, gbps: llamaExpertBytes(s, quant) / us / 1e3, layers: files.layers, msOne, msTwo };
    } finally {
      await two.dispose();
    }
  } finally {
    await one.dispose();
    await files.remove();
  }
}

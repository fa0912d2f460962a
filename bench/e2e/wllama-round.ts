// wllama as an engine of the e2e and shapes benchmarks: it takes text, so our prompt tokens go as text, which it
// re-tokenizes with the same vocabulary; a round whose token counts differ from ours is refused rather than timed.
import type { LocalModel } from '../../src/engine/load';
import type { WllamaPeer } from '../peers/wllama';
import type { RoundResult } from './engine-round';

/**
 * The text wllama must be given to evaluate exactly `prompt` (our tokens). The exported GGUF carries the model's
 * tokenizer.ggml.add_bos_token (tools/export-gguf.ts), so llama.cpp adds the BOS itself: our BOS is not spelled out.
 */
export function wllamaPromptText(ours: Pick<LocalModel, 'manifest' | 'codec'>, prompt: readonly number[]): string {
  const g = ours.manifest.generation;
  return ours.codec!.decode(prompt.slice(g.addBos && g.bosTokenId !== null ? 1 : 0));
}

/** One timed round (llama.cpp's own counters), checked to have evaluated `promptTokens` and decoded `decode`. */
export async function wllamaRound(peer: WllamaPeer, text: string, promptTokens: number, decode: number): Promise<RoundResult> {
  const r = await peer.round(text, decode);
  if (r.promptTokens !== promptTokens || r.decodedTokens !== decode) throw new Error(`wllama evaluated ${r.promptTokens} prompt / ${r.decodedTokens} new tokens, expected ${promptTokens} / ${decode}`);
  return { prefillMs: r.prefillMs, decodeMs: r.decodeMs, tokens: [] };
}

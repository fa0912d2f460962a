// wllama as an engine of the e2e and shapes benchmarks: it takes text, so our prompt tokens go as text (its
// completion API adds no BOS, so the BOS token is spelled out and parsed as a special token); it re-tokenizes with
// the same vocabulary, and a round whose token counts differ from ours is refused rather than timed.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LocalModel } from '../../src/engine/load';
import type { WllamaPeer } from '../peers/wllama';
import type { RoundResult } from './engine-round';

/** The text wllama must be given to evaluate exactly `prompt` (our tokens). */
export async function wllamaPromptText(modelDir: string, ours: Pick<LocalModel, 'manifest' | 'codec'>, prompt: readonly number[]): Promise<string> {
  const g = ours.manifest.generation;
  const bos = g.addBos && g.bosTokenId !== null ? await tokenText(modelDir, g.bosTokenId) : '';
  return bos + ours.codec!.decode(prompt.slice(g.addBos ? 1 : 0));
}

/** One timed round (llama.cpp's own counters), checked to have evaluated `promptTokens` and decoded `decode`. */
export async function wllamaRound(peer: WllamaPeer, text: string, promptTokens: number, decode: number): Promise<RoundResult> {
  const r = await peer.round(text, decode);
  if (r.promptTokens !== promptTokens || r.decodedTokens !== decode) throw new Error(`wllama evaluated ${r.promptTokens} prompt / ${r.decodedTokens} new tokens, expected ${promptTokens} / ${decode}`);
  return { prefillMs: r.prefillMs, decodeMs: r.decodeMs, tokens: [] };
}

/** The text of a (special) token, from the model's tokenizer.json. */
async function tokenText(modelDir: string, id: number): Promise<string> {
  const tok = JSON.parse(await readFile(join(modelDir, 'tokenizer.json'), 'utf8')) as { added_tokens?: { id: number; content: string }[] };
  const t = tok.added_tokens?.find((x) => x.id === id);
  if (!t) throw new Error(`token ${id} is not an added token of ${modelDir}/tokenizer.json`);
  return t.content;
}

// One timed round of llama.cpp (node-llama-cpp, 1 thread) on the same GGUF: prefill the prompt as one batch,
// then greedy-decode token by token, sampling natively (temperature 0) so no logits cross into JS.
import type { LlamaSession } from '../peers/llama';
import type { RoundResult } from './engine-round';

export async function llamaRound(s: LlamaSession, prompt: readonly number[], decode: number, now: () => number): Promise<RoundResult> {
  await s.sequence.clearHistory();
  const next = { generateNext: { token: true, options: { temperature: 0 } } } as const;
  const t0 = now();
  const res = await s.sequence.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, next] : t)) as never);
  let tok = res.at(-1)?.next.token as number;
  const t1 = now();
  const tokens: number[] = [];
  for (let i = 0; i < decode; i++) {
    tokens.push(tok);
    tok = (await s.sequence.controlledEvaluate([[tok, next]] as never))[0]?.next.token as number;
  }
  return { prefillMs: t1 - t0, decodeMs: now() - t1, tokens };
}

// Log probabilities of tokens under one logits row: the raw model distribution (log-softmax of the logits, before
// temperature, top-k/top-p and grammar masks; vLLM's default "raw_logprobs"), in f64 with the max subtracted.
import type { TokenLogprob } from './api';

/** Most alternatives a request may ask for per token (OpenAI's top_logprobs limit). */
export const MAX_TOP_LOGPROBS = 20;

/** log(sum(exp(row))) computed stably: log softmax(row)[i] = row[i] - logSumExp(row). */
export function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return max + Math.log(sum);
}

/** The `n` highest entries of `row`, highest first, lower id first among equals (a single pass with an insertion list). */
export function topIds(row: Float32Array, n: number): number[] {
  const ids: number[] = [];
  if (n <= 0) return ids;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (ids.length === n && !(v > row[ids[n - 1]])) continue;
    let at = ids.length === n ? n - 1 : ids.length;
    while (at > 0 && v > row[ids[at - 1]]) at--;
    ids.splice(at, 0, i);
    if (ids.length > n) ids.pop();
  }
  return ids;
}

/** `token`'s log probability under `row`, with the `top` most likely tokens. */
export function tokenLogprob(row: Float32Array, token: number, top: number): TokenLogprob {
  const lse = logSumExp(row);
  return { id: token, logprob: row[token] - lse, top: topIds(row, top).map((id) => ({ id, logprob: row[id] - lse })) };
}

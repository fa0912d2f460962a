// The decode loop's bookkeeping for logprobs: each sampled token's log probability, queued until its text is
// released (stop strings hold text back), and the prompt's tokens scored during prefill (`echo`).
import type { TokenLogprob } from './api';
import type { PrefillOptions } from './prefill';
import { logSumExp, topIds } from './logprobs';

/** Sampled tokens' log probabilities, in order; none computed when `top` is undefined (no logprobs asked for). */
export class LogprobQueue {
  private lse = 0;
  private top: { id: number; logprob: number }[] = [];
  private last: TokenLogprob | null = null;
  private queue: TokenLogprob[] = [];

  constructor(private readonly n: number | undefined) {}

  /** The raw row, before any mask: its normaliser and its most likely tokens. */
  score(row: Float32Array): void {
    if (this.n === undefined) return;
    this.lse = logSumExp(row);
    this.top = topIds(row, this.n).map((id) => ({ id, logprob: row[id] - this.lse }));
  }

  /** The token sampled from that row (a mask leaves an allowed token's logit as it was). */
  took(token: number, row: Float32Array): void {
    if (this.n === undefined) return;
    this.last = { id: token, logprob: row[token] - this.lse, top: this.top };
  }

  /** The last sampled token becomes part of the output (EOS and a token past max_tokens never do). */
  commit(): void {
    if (this.last) this.queue.push(this.last);
    this.last = null;
  }

  get pending(): boolean {
    return this.queue.length > 0;
  }

  /** What goes out with the next chunk: every committed token not sent yet. */
  take(): { logprobs?: TokenLogprob[] } {
    if (this.n === undefined) return {};
    const out = this.queue;
    this.queue = [];
    return { logprobs: out };
  }
}

/**
 * The prompt scored as it is prefilled: row j of the logits predicts token j + 1, so token 0 has no log probability
 * (null, as OpenAI's echo gives it). Rows are consumed chunk by chunk, never all kept (a 4k prompt's rows at a 49k
 * vocabulary would be 800 MB). Returns the last row, which the first completion token is sampled from.
 */
export class PromptScorer {
  readonly logprobs: (TokenLogprob | null)[] = [null];

  constructor(private readonly tokens: readonly number[], private readonly top: number) {}

  async run(prefill: (opts: PrefillOptions) => Promise<Float32Array[]>): Promise<Float32Array> {
    let last: Float32Array | null = null;
    await prefill({
      logits: 'all',
      onRows: (rows, start) => {
        rows.forEach((row, r) => {
          const j = start + r;
          if (j + 1 < this.tokens.length) {
            const lse = logSumExp(row);
            const id = this.tokens[j + 1]!;
            this.logprobs.push({ id, logprob: row[id] - lse, top: topIds(row, this.top).map((t) => ({ id: t, logprob: row[t] - lse })) });
          }
        });
        last = rows[rows.length - 1] ?? last;
      },
    });
    return last!;
  }
}

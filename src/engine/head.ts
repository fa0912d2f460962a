// The head seam: the token embedding (rows into x) and the output head (logits from the final hidden rows). Local
// by default (the embedding and output matrices in this heap, tied or not); a front whose memory cannot spare them
// (granite's tied 49,155 x 1,024 head is ~30 MiB of heap at q4_0) has an expert shard hold them instead
// (src/remote/remote-head.ts), and forward() never asks which.
import type { Kernels, Mat, Ptr } from '../kernels/types';

export interface HeadExecutor {
  /** x (tokens.length, H) at `out` = the embedding rows of `tokens` (before any embedding multiplier) */
  embed(tokens: readonly number[], out: Ptr): Promise<void> | void;
  /** (rows, vocab) at `out` = output @ h for the `rows` final-normed hidden rows at `h` (before logit scaling) */
  logits(h: Ptr, rows: number, out: Ptr): Promise<void> | void;
}

/** The head in this heap. */
export function localHead(k: Kernels, embed: Mat, output: Mat): HeadExecutor {
  const H = embed.cols;
  return {
    embed(tokens, out) {
      for (let t = 0; t < tokens.length; t++) k.getRow(embed, tokens[t], out + t * H * 4);
    },
    logits(h, rows, out) {
      k.matmul(output, h, out, rows);
    },
  };
}

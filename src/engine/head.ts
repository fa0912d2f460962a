// The head seam: the token embedding (rows into x) and the output head (logits from the final hidden rows). Local
// by default (the embedding and output matrices in this heap, tied or not); a front whose memory cannot spare them
// (granite's tied 49,155 x 1,024 head is ~30 MiB of heap at q4_0) has an expert shard hold them instead
// (src/remote/remote-head.ts), and forward() never asks which.
import type { Architecture } from '../format/manifest';
import type { Kernels, Mat, Ptr } from '../kernels/types';
import type { SamplingParams } from './api';

export interface HeadExecutor {
  /** x (tokens.length, H) at `out` = the embedding rows of `tokens` (before any embedding multiplier) */
  embed(tokens: readonly number[], out: Ptr): Promise<void> | void;
  /** (rows, vocab) at `out` = output @ h for the `rows` final-normed hidden rows at `h` (before logit scaling) */
  logits(h: Ptr, rows: number, out: Ptr): Promise<void> | void;
  /**
   * Where the logits are not here: the next token, picked from the scaled logits of the final-normed row at `h`
   * with the sampler's draw `u` (pickToken), and that token's embedding row, so a step needs one round trip.
   */
  sample?(h: Ptr, sampling: Pick<SamplingParams, 'temperature' | 'topP' | 'topK'>, u: number): Promise<{ token: number; embedding: Float32Array }>;
}

/** The logits as the model defines them: output @ h, divided by logitsScaling (granite's 8), in place. */
export function scaleLogits(row: Float32Array, a: Pick<Architecture, 'logitsScaling'>): void {
  if (a.logitsScaling === 1) return;
  const s = 1 / a.logitsScaling;
  for (let i = 0; i < row.length; i++) row[i] *= s;
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

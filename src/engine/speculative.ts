// Self-speculative decoding's arithmetic: which drafted tokens the verifier accepts and which token comes next.
// Greedy (temperature 0): the longest prefix on which draft and verifier agree, then the verifier's own token, so
// the output is exactly non-speculative greedy decoding's. Sampling: speculative sampling (Leviathan et al. 2023,
// Chen et al. 2023): accept drafted token d with probability min(1, p(d)/q(d)), on a rejection sample from the
// normalised residual max(0, p - q), after k acceptances sample the bonus token from p; every token then follows
// the verifier's distribution p exactly. p and q are the distributions the sampler draws from (temperature, top-k,
// top-p applied), so the guarantee holds for the sampler's own distribution. Draws come from the generation's
// seeded sampler, so a seed reproduces a speculative generation.
import type { SamplingParams } from './api';
import { argmax, tokenDistribution } from './sampler';

/** What one verification pass decided. */
export interface Verdict {
  /** drafted tokens accepted, a prefix of the draft (0..k) */
  readonly accepted: number;
  /** the token after them: the verifier's correction or its bonus token */
  readonly next: number;
}

/**
 * Greedy: `drafts` (k tokens) against the verifier's k + 1 logit rows (row i predicts the token after position i of
 * the pass: row 0 checks drafts[0]).
 */
export function acceptGreedy(drafts: readonly number[], rows: readonly Float32Array[]): Verdict {
  if (rows.length !== drafts.length + 1) throw new RangeError(`verification of ${drafts.length} drafted tokens needs ${drafts.length + 1} rows, got ${rows.length}`);
  let i = 0;
  while (i < drafts.length && argmax(rows[i]) === drafts[i]) i++;
  return { accepted: i, next: argmax(rows[i]) };
}

/**
 * Speculative sampling. `draftProbs[i]` is the distribution drafts[i] was sampled from (dense, vocabulary-long,
 * summing to 1); the verifier's distributions come from `rows` under `params`. `draw()` returns uniforms in [0, 1).
 */
export function acceptSampled(
  drafts: readonly number[],
  draftProbs: readonly Float32Array[],
  rows: readonly Float32Array[],
  params: Pick<SamplingParams, 'temperature' | 'topK' | 'topP'>,
  draw: () => number,
): Verdict {
  if (rows.length !== drafts.length + 1 || draftProbs.length !== drafts.length) {
    throw new RangeError(`verification of ${drafts.length} drafted tokens needs ${drafts.length + 1} rows and ${drafts.length} draft distributions`);
  }
  const p = new Float32Array(rows[0].length);
  for (let i = 0; i < drafts.length; i++) {
    tokenDistribution(rows[i], params, p);
    const d = drafts[i];
    const q = draftProbs[i];
    const u = draw();
    if (q[d] > 0 && u * q[d] < p[d]) continue; // accepted with probability min(1, p(d) / q(d))
    // rejected: the next token from max(0, p - q), normalised
    let sum = 0;
    for (let t = 0; t < p.length; t++) sum += p[t] = Math.max(0, p[t] - q[t]);
    return { accepted: i, next: sum > 0 ? sampleDense(p, sum, draw()) : argmax(rows[i]) };
  }
  tokenDistribution(rows[drafts.length], params, p);
  return { accepted: drafts.length, next: sampleDense(p, 1, draw()) };
}

/** The token a uniform `u` picks from dense weights summing to `sum`. */
export function sampleDense(w: Float32Array, sum: number, u: number): number {
  let r = u * sum;
  let last = 0;
  for (let t = 0; t < w.length; t++) {
    if (w[t] <= 0) continue;
    last = t;
    r -= w[t];
    if (r < 0) return t;
  }
  return last; // rounding left a sliver: the last token with weight
}

/**
 * How many tokens to draft next, from the acceptance rate so far: the expected run of accepted drafts,
 * alpha / (1 - alpha), at least 1 and at most `max` (SPECULATIVE_MAX_TOKENS); a prior of 0.8 (4 drafted tokens)
 * before any evidence, weak enough that two fully accepted passes reach `max` and a few rejections bring it down.
 */
export function nextDraftLength(drafted: number, accepted: number, max: number): number {
  const alpha = (accepted + 4) / (drafted + 5); // Laplace-style prior: 4 of 5 accepted
  return Math.max(1, Math.min(max, Math.round(alpha / Math.max(1e-6, 1 - alpha))));
}

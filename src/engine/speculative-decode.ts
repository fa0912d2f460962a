// Self-speculative decoding across the split: the model restricted to its resident experts (the draft executor:
// cold picks dropped or substituted, no round trip) drafts k tokens one by one into the generation's own KV cache;
// the exact split model (cold experts on the backend) then verifies them in one forward pass over k + 1 positions,
// which pays each layer's round trip once for all of them, and overwrites those positions with exact values. The
// cache keeps the accepted prefix; the verifier's next token follows. Tokens come out one at a time, as the
// generation loop asks for them: next(t) is the token after t.
import type { MoeUsage, SamplingParams } from './api';
import type { ExpertExecutor } from './experts';
import { forward, PREFILL_CHUNK, type Sequence } from './forward';
import { throwIfAborted } from './prefill';
import { pickToken, tokenDistribution } from './sampler';
import { acceptGreedy, acceptSampled, nextDraftLength, sampleDense } from './speculative';
import type { Kernels } from '../kernels/types';

/** Counters of one generation's speculation: its usage.moe fields. */
export type SpeculationStats = Pick<MoeUsage, 'speculative_drafted' | 'speculative_accepted' | 'verification_passes'>;

export interface SpeculationOptions {
  /** the model restricted to the resident experts: no remote calls */
  draft: ExpertExecutor;
  /** SPECULATIVE_MAX_TOKENS: the most tokens one pass drafts */
  maxTokens: number;
  /** updated as passes run */
  stats: SpeculationStats;
  /** false once speculation stopped paying (e.g. the backend failed, so the split is local too): decode plainly */
  worthwhile?: () => boolean;
}

export class SpeculativeDecoder {
  /** tokens of the last pass not yet handed out: accepted drafts (in the cache), then the verifier's (not yet) */
  private readonly queue: number[] = [];
  private readonly row: Float32Array;

  constructor(
    private readonly k: Kernels,
    private readonly seq: Sequence,
    /** the exact split executor */
    private readonly exact: ExpertExecutor,
    private readonly o: SpeculationOptions,
    private readonly sampling: Pick<SamplingParams, 'temperature' | 'topK' | 'topP'>,
    /** the generation's sampler draws */
    private readonly draw: () => number,
  ) {
    this.row = new Float32Array(seq.weights.arch.vocabSize);
  }

  /** The token after `emitted` (the last token handed out, or the prompt's first sampled one). */
  async next(emitted: number, signal?: AbortSignal): Promise<number> {
    const queued = this.queue.shift();
    if (queued !== undefined) return queued;
    this.queue.push(...(await this.pass(emitted, signal)));
    return this.queue.shift()!;
  }

  /** One draft-then-verify pass from `t0` (not yet in the cache): the tokens that follow it, in order. */
  private async pass(t0: number, signal?: AbortSignal): Promise<number[]> {
    const { k, seq } = this;
    const p = seq.length;
    const room = Math.min(seq.capacity - p - 1, PREFILL_CHUNK - 1); // drafted positions must fit the cache and one forward call
    const want = this.o.worthwhile?.() === false ? 0 : nextDraftLength(this.o.stats.speculative_drafted, this.o.stats.speculative_accepted, this.o.maxTokens);
    const n = Math.max(0, Math.min(want, room));
    if (n === 0) return [this.pick((await forward(k, seq, this.exact, [t0], { logits: 'last', into: this.row }))[0])];

    const greedy = this.sampling.temperature <= 0;
    const drafts: number[] = [];
    const draftProbs: Float32Array[] = [];
    let t = t0;
    for (let i = 0; i < n; i++) {
      throwIfAborted(signal);
      const logits = (await forward(k, seq, this.o.draft, [t], { logits: 'last', into: this.row }))[0];
      if (greedy) t = pickToken(logits, this.sampling, 0);
      else {
        const q = tokenDistribution(logits, this.sampling, new Float32Array(logits.length));
        draftProbs.push(q);
        t = sampleDense(q, 1, this.draw());
      }
      drafts.push(t);
    }
    throwIfAborted(signal);
    seq.length = p; // the verifier rewrites positions p..p+n with exact keys and values
    const rows = await forward(k, seq, this.exact, [t0, ...drafts], { logits: 'each' });
    const verdict = greedy ? acceptGreedy(drafts, rows) : acceptSampled(drafts, draftProbs, rows, this.sampling, this.draw);
    seq.length = p + 1 + verdict.accepted; // t0 and the accepted drafts; the verifier's token is not in the cache yet
    const s = this.o.stats;
    s.speculative_drafted += n;
    s.speculative_accepted += verdict.accepted;
    s.verification_passes++;
    return [...drafts.slice(0, verdict.accepted), verdict.next];
  }

  private pick(logits: Float32Array): number {
    return pickToken(logits, this.sampling, this.sampling.temperature <= 0 ? 0 : this.draw());
  }
}

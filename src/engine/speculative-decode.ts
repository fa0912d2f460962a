// Self-speculative decoding across the split: the model restricted to its resident experts (the draft executor:
// cold picks dropped or substituted, no round trip) drafts k tokens one by one into the generation's own KV cache;
// the exact split model (cold experts on the backend) then verifies them in one forward pass over k + 1 positions,
// which pays each layer's round trip once for all of them, and overwrites those positions with exact values. The
// cache keeps the accepted prefix; the verifier's next token follows. Tokens come out one at a time, as the
// generation loop asks for them: next(t) is the token after t.
// A drafted position whose every pick was resident (and whose earlier positions were too) was computed exactly: its
// logits are the verifier's, so the token it predicts is accepted as it stands and the verification pass starts
// after it; a pass whose drafts were all exact needs no verification at all (no round trip, as plain decoding).
import type { MoeUsage, SamplingParams } from './api';
import type { ExpertBatch, ExpertExecutor } from './experts';
import { forward, PREFILL_CHUNK, type Sequence } from './forward';
import { throwIfAborted } from './prefill';
import { pickToken, tokenDistribution } from './sampler';
import { acceptGreedy, acceptSampled, nextDraftLength, sampleDense } from './speculative';
import type { Kernels } from '../kernels/types';

/** Counters of one generation's speculation: its usage.moe fields (hot_hits gets the exactly drafted positions' picks). */
export type SpeculationStats = Pick<MoeUsage, 'speculative_drafted' | 'speculative_accepted' | 'verification_passes' | 'hot_hits'>;

export interface SpeculationOptions {
  /** the model restricted to the resident experts: no remote calls */
  draft: ExpertExecutor;
  /** SPECULATIVE_MAX_TOKENS: the most tokens one pass drafts */
  maxTokens: number;
  /** updated as passes run */
  stats: SpeculationStats;
  /** false once speculation stopped paying (e.g. the backend failed, so the split is local too): decode plainly */
  worthwhile?: () => boolean;
  /**
   * A counter the draft advances whenever it computes a pick approximately (a cold pick substituted or dropped);
   * absent: every drafted position is verified.
   */
  approximations?: () => number;
}

/** The draft with its router picks of the current position kept, for positions it computes exactly (see observe). */
class CapturingDraft implements ExpertExecutor {
  readonly head?: ExpertExecutor['head'];
  readonly picks: number[][];

  constructor(private readonly inner: ExpertExecutor, numLayers: number, numExperts: number) {
    this.head = inner.head;
    this.picks = Array.from({ length: numLayers }, () => new Array<number>(numExperts).fill(0));
  }

  run(b: ExpertBatch): Promise<void> | void {
    if (b.layer === 0) for (const row of this.picks) row.fill(0);
    for (const slots of b.routes) for (const r of slots) this.picks[b.layer][r.expert]++;
    return this.inner.run(b);
  }
}

export class SpeculativeDecoder {
  /** tokens of the last pass not yet handed out: accepted drafts (in the cache), then the verifier's (not yet) */
  private readonly queue: number[] = [];
  private readonly row: Float32Array;
  private readonly draft: CapturingDraft;

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
    const a = seq.weights.arch;
    this.row = new Float32Array(a.vocabSize);
    this.draft = new CapturingDraft(o.draft, a.numLayers, a.numExperts);
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
    const approx = this.o.approximations;
    let exact = 0; // leading drafted positions computed exactly
    const exactPicks = this.draft.picks.map((r) => r.map(() => 0)); // their router picks
    let t = t0;
    for (let i = 0; i < n; i++) {
      throwIfAborted(signal);
      const before = approx?.();
      const logits = (await forward(k, seq, this.draft, [t], { logits: 'last', into: this.row }))[0];
      if (approx && exact === i && approx() === before) {
        exact++;
        this.draft.picks.forEach((row, l) => row.forEach((c, e) => (exactPicks[l][e] += c)));
      }
      if (greedy) t = pickToken(logits, this.sampling, 0);
      else {
        const q = tokenDistribution(logits, this.sampling, new Float32Array(logits.length));
        draftProbs.push(q);
        t = sampleDense(q, 1, this.draw());
      }
      drafts.push(t);
    }
    throwIfAborted(signal);
    const s = this.o.stats;
    s.speculative_drafted += n;
    // the exactly drafted positions are the verifier's own: its routing statistics and counters see them
    if (exact > 0) {
      this.exact.observe?.(exactPicks, exact);
      for (const row of exactPicks) for (const c of row) s.hot_hits += c; // every pick of an exact position was resident
    }
    if (exact === n) {
      // every draft came from exact logits: all accepted, nothing to verify; the last is not in the cache yet
      s.speculative_accepted += n;
      return drafts;
    }
    // positions p..p+exact-1 hold exact keys and values; the verifier rewrites p+exact..p+n
    seq.length = p + exact;
    const rows = await forward(k, seq, this.exact, [exact === 0 ? t0 : drafts[exact - 1], ...drafts.slice(exact)], { logits: 'each' });
    const verdict = greedy ? acceptGreedy(drafts.slice(exact), rows) : acceptSampled(drafts.slice(exact), draftProbs.slice(exact), rows, this.sampling, this.draw);
    const accepted = exact + verdict.accepted;
    seq.length = p + 1 + accepted; // t0 and the accepted drafts; the verifier's token is not in the cache yet
    s.speculative_accepted += accepted;
    s.verification_passes++;
    return [...drafts.slice(0, accepted), verdict.next];
  }

  private pick(logits: Float32Array): number {
    return pickToken(logits, this.sampling, this.sampling.temperature <= 0 ? 0 : this.draw());
  }
}

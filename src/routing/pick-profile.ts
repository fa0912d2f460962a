// Tier one in the Worker: picks a generation's profile by nearest centroid over its prompt's layer-0
// routing. Layer 0's router reads the embeddings through attention only, so its picks are known before
// any expert has run and are the same whatever the hot set and the cold policy: the same prompt gets the
// same profile in every isolate and under every policy (90% right on held-out prompts: bench/results/hotset.md).
import type { ExpertBatch, ExpertExecutor } from '../engine/experts';
import type { HeadExecutor } from '../engine/head';
import { classify, restrictSkillMap, type SkillMap } from './skill-map';

export class ProfilePicker implements ExpertExecutor {
  readonly head?: HeadExecutor;
  private readonly map: SkillMap;
  /** layer-0 routings of the prompt so far; rows of the other layers stay empty */
  private readonly counts: number[][];
  private seen = 0;
  private done = false;

  /**
   * @param promptTokens how many tokens the prefill routes at layer 0 before the pick (the whole prompt)
   * @param onPick called once, before the experts of the layer-0 batch that completes the prompt run
   */
  constructor(
    private readonly inner: ExpertExecutor,
    map: SkillMap,
    numLayers: number,
    numExperts: number,
    private readonly promptTokens: number,
    private readonly onPick: (profile: string) => void,
  ) {
    this.map = restrictSkillMap(map, [0]);
    this.head = inner.head; // a decorator of the experts passes the head through
    this.counts = Array.from({ length: numLayers }, () => new Array<number>(numExperts).fill(0));
  }

  run(batch: ExpertBatch): Promise<void> | void {
    if (!this.done && batch.layer === 0) {
      const row = this.counts[0];
      for (const slots of batch.routes) for (const r of slots) row[r.expert]++;
      this.saw(batch.nTok);
    }
    return this.inner.run(batch);
  }

  /** A prompt prefilled elsewhere: its layer-0 picks count as if its batches had run here. */
  observe(counts: readonly (readonly number[])[], tokens: number): void {
    if (!this.done) {
      counts[0]?.forEach((v, e) => (this.counts[0][e] += v));
      this.saw(tokens);
    }
    this.inner.observe?.(counts, tokens);
  }

  private saw(tokens: number): void {
    this.seen += tokens;
    if (this.seen >= this.promptTokens) {
      this.done = true;
      const pick = classify(this.map, this.counts).profile;
      if (pick) this.onPick(pick);
    }
  }
}

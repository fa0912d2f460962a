// The head on an expert shard (shard-layout.json's `head`): embedding rows, logits, or (a generation's decode
// step) the sampled token with its embedding row, asked for over the shard's socket of this generation and written
// where forward() expects them. There is nothing to degrade to without a head,
// so a failure fails the generation (502/504 naming the shard), unlike a failed expert call.
import type { HeadExecutor } from '../engine/head';
import type { Architecture } from '../format/manifest';
import type { Kernels, Ptr } from '../kernels/types';
import type { SamplingParams } from '../engine/api';
import { asShardError, BackendError, BackendUnavailableError } from './errors';
import type { ExpertSession } from './session';

export class RemoteHead implements HeadExecutor {
  constructor(private readonly k: Kernels, private readonly session: Pick<ExpertSession, 'callHead'>, private readonly arch: Pick<Architecture, 'hiddenSize' | 'vocabSize'>) {}

  async embed(tokens: readonly number[], out: Ptr): Promise<void> {
    const H = this.arch.hiddenSize;
    const r = await this.session.callHead({ op: 'embed', hidden: H, tokens }, H).catch(shardFailure);
    this.k.heap.f32(out, tokens.length * H).set(r.values); // a fresh view: the heap may have grown meanwhile
  }

  /** One round trip a decode step: the shard samples from its logits with our draw and sends the token's embedding. */
  async sample(h: Ptr, sampling: Pick<SamplingParams, 'temperature' | 'topP' | 'topK'>, u: number): Promise<{ token: number; embedding: Float32Array }> {
    const H = this.arch.hiddenSize;
    // a view of the heap, not a copy: the frame is encoded from it before callHead first awaits
    const x = this.k.heap.f32(h, H);
    const { temperature, topP, topK } = sampling;
    const r = await this.session.callHead({ op: 'sample', hidden: H, rows: x, sampling: { temperature, topP, topK, u } }, 1 + H).catch(shardFailure);
    const token = r.values[0];
    if (!(Number.isInteger(token) && token >= 0 && token < this.arch.vocabSize)) shardFailure(new BackendUnavailableError('protocol', `the head shard sampled token ${token}, outside the vocabulary`));
    return { token, embedding: r.values.subarray(1) };
  }

  async logits(h: Ptr, rows: number, out: Ptr): Promise<void> {
    const H = this.arch.hiddenSize;
    const V = this.arch.vocabSize;
    const x = this.k.heap.f32(h, rows * H); // encoded into the frame before callHead first awaits
    const r = await this.session.callHead({ op: 'logits', hidden: H, rows: x }, V).catch(shardFailure);
    this.k.heap.f32(out, rows * V).set(r.values);
  }
}

function shardFailure(e: unknown): never {
  throw e instanceof BackendError ? asShardError(e) : e;
}

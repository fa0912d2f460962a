// The prefill call on the backend: a prompt through the whole model (cpu device: the trunk in this process's WASM
// heap, the experts on the device's threads; webgpu device: all of it in WGSL, gpu-trunk.ts), layer by layer, each layer's KV cache streamed to the Worker as soon as it is final,
// then the last position's hidden row. Requests are checked before anything is allocated; at most `maxConcurrent`
// prompts hold a KV cache here at once (the rest wait their turn).
import { InvalidRequestError } from '../../src/common/errors';
import { embedTokens, Sequence } from '../../src/engine/forward';
import { localHead } from '../../src/engine/head';
import type { GpuTrunk } from './gpu-trunk';
import { kvRowsOf } from './kv-runs';
import { checkKvCacheType } from '../../src/engine/kv-cache';
import { readKvRows } from '../../src/engine/kv-transfer';
import type { ModelWeights } from '../../src/engine/model';
import { prefillByLayer } from '../../src/engine/prefill-layers';
import type { Kernels, Mat } from '../../src/kernels/types';
import { tensorNames } from '../../src/format/manifest';
import { activationDTypeFor } from '../../src/protocol/activations';
import { errorFrameFor, sameTag, tagHex, WireError } from '../../src/protocol/expert-wire';
import { decodePrefillFrame, encodeKvFrame, encodePrefilled, kvRunBytes, positionsPerKvFrame, type PrefillRequest } from '../../src/protocol/prefill-wire';
import type { Metrics } from '../metrics';
import type { BackendModel } from '../model';
import { DeviceExperts } from './device-experts';
import type { ExpertDevice } from '../devices/device';

export interface PrefillAnswer {
  readonly status: number;
  /** an error frame, or the stream of KV frames ending in a prefilled (or error) frame */
  readonly body: Uint8Array | ReadableStream<Uint8Array>;
}

/**
 * Where a prompt's forward pass runs: the trunk in the service's WASM heap with the experts on the device (cpu; the
 * weights hold no expert), or the webgpu device's WGSL trunk (the heap holds only its token embedding).
 */
export type PrefillForward = { readonly trunk: ModelWeights } | { readonly gpu: GpuTrunk };

export class PrefillService {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly model: BackendModel,
    private readonly kernels: Kernels,
    private readonly forward: PrefillForward,
    private readonly device: ExpertDevice,
    private readonly metrics: Metrics,
    private readonly maxConcurrent = 4,
  ) {}

  /** What the expert rows travel as: what the Worker sends a cold expert (q8_0 for quantized experts). */
  private get actDType() {
    return activationDTypeFor(this.model.manifest.tensors[tensorNames.expertGate(0, 0)]!.dtype);
  }

  /** Never throws: a request that cannot be served is an error frame with its status. */
  async handle(bytes: Uint8Array): Promise<PrefillAnswer> {
    this.metrics.prefill.calls++;
    let req: PrefillRequest;
    try {
      req = await this.check(bytes);
    } catch (e) {
      this.metrics.error(e instanceof WireError ? e.code : 'internal');
      return { status: e instanceof WireError ? e.status : 500, body: errorFrameFor(e, this.model.tag) };
    }
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    void this.stream(req, writable.getWriter());
    return { status: 200, body: readable };
  }

  private async check(bytes: Uint8Array): Promise<PrefillRequest> {
    const f = await decodePrefillFrame(bytes);
    if (f.kind !== 'prefill') throw new WireError(400, 'bad_frame', `expected a prefill request frame, got a ${f.kind} frame`, f.requestId);
    const id = f.requestId;
    const m = this.model;
    const a = m.manifest.architecture;
    if (!sameTag(f.modelTag, m.tag)) throw new WireError(409, 'model_mismatch', `request is for model tag ${tagHex(f.modelTag)}, this backend serves ${m.name} (${tagHex(m.tag)})`, id);
    if (f.tokens.length > a.contextLength) throw new WireError(400, 'context_length_exceeded', `${f.tokens.length} tokens exceed the model's context of ${a.contextLength}`, id);
    for (let i = 0; i < f.tokens.length; i++) {
      if (f.tokens[i] >= a.vocabSize) throw new WireError(400, 'bad_token', `token ${i} is ${f.tokens[i]}, outside the vocabulary of ${a.vocabSize}`, id);
    }
    try {
      checkKvCacheType(a, f.kvType);
    } catch (e) {
      throw new WireError(400, 'unsupported_kv_type', (e as Error).message, id);
    }
    return f;
  }

  private async stream(req: PrefillRequest, out: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
    const h = { requestId: req.requestId, modelTag: this.model.tag };
    const a = this.model.manifest.architecture;
    const kvDim = a.numKvHeads * a.headDim;
    const n = req.tokens.length;
    const cancelled = new AbortController();
    out.closed.catch(() => cancelled.abort(new InvalidRequestError('the client went away', 'prefill'))); // a reader that left: stop computing
    await this.turn();
    const t0 = performance.now();
    let seq: Sequence | null = null;
    const per = positionsPerKvFrame(req.kvType, kvDim);
    /** One layer's frames, runs of `per` positions; `rows(pos0, nPos)` gives a run's K and V bytes. */
    const sendLayer = async (layer: number, rows: (pos0: number, nPos: number) => Uint8Array) => {
      for (let pos0 = 0; pos0 < n; pos0 += per) {
        const nPos = Math.min(per, n - pos0);
        const frame = await encodeKvFrame(h, { layer, kvType: req.kvType, pos0, nPos, kvDim, rows: rows(pos0, nPos) });
        this.metrics.prefill.kvBytes += frame.length;
        await out.write(frame); // waits for the reader: a slow Worker holds one frame here, not the whole cache
      }
    };
    try {
      let hidden: Float32Array;
      let counts: number[][];
      if ('gpu' in this.forward) {
        // the whole forward pass in WGSL; the embedding rows from this heap
        const { gpu } = this.forward;
        const x = await this.embed(gpu.embedding, req.tokens);
        const r = await gpu.prefill(x, req.kvType, (layer, k, v) => sendLayer(layer, (pos0, nPos) => kvRowsOf(k, v, kvDim, pos0, nPos)));
        hidden = r.x.slice((n - 1) * a.hiddenSize, n * a.hiddenSize);
        counts = r.counts;
      } else {
        const s = (seq = new Sequence(this.kernels, this.forward.trunk, n, { kvType: req.kvType }));
        const experts = new DeviceExperts(this.kernels, this.device, a.hiddenSize, a.topK, a.numLayers, a.numExperts, this.actDType);
        hidden = await prefillByLayer(this.kernels, s, experts, Array.from(req.tokens), {
          signal: cancelled.signal,
          onLayer: (layer) => sendLayer(layer, (pos0, nPos) => {
            const rows = new Uint8Array(2 * kvRunBytes(req.kvType, nPos, kvDim));
            readKvRows(this.kernels.heap, s, layer, pos0, nPos, rows);
            return rows;
          }),
        });
        counts = experts.counts;
      }
      await out.write(encodePrefilled(h, { positions: n, hidden, counts }));
      this.metrics.prefill.tokens += n;
      this.metrics.prefill.seconds += (performance.now() - t0) / 1000;
      await out.close();
    } catch (e) {
      this.metrics.error(e instanceof WireError ? e.code : cancelled.signal.aborted ? 'client_gone' : 'internal');
      if (!cancelled.signal.aborted) await out.write(errorFrameFor(e, this.model.tag, req.requestId)).then(() => out.close(), () => {});
      else await out.abort().catch(() => {});
    } finally {
      seq?.release();
      this.release();
    }
  }

  /** The prompt's embedding rows (times the embedding multiplier), from `embedding` in this heap. */
  private async embed(embedding: Mat, tokens: ArrayLike<number>): Promise<Float32Array> {
    const a = this.model.manifest.architecture;
    const H = a.hiddenSize;
    const ptr = this.kernels.heap.alloc(tokens.length * H * 4);
    try {
      // the head's embedding half alone: its output half (given the embedding too) is never asked for here
      await embedTokens(this.kernels, a, localHead(this.kernels, embedding, embedding), Array.from(tokens), ptr);
      return this.kernels.heap.f32(ptr, tokens.length * H).slice();
    } finally {
      this.kernels.heap.release(ptr);
    }
  }

  private turn(): Promise<void> {
    if (this.running < this.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push(resolve)); // the slot passes straight from release()
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) next();
    else this.running--;
  }
}

// WebGpuTrunk: the attention blocks of a model's layers on the GPU for one sequence: norm, q/k/v projections, biases,
// q/k norms, rope, the new rows into an f32 KV cache, causal GQA attention, o projection and the residual add, the
// same composition as src/engine/forward.ts's attention block, on weights and a KV cache that stay on the GPU.
// One layer's block for a chunk of tokens is one submit with one readback.
import type { Architecture } from '../../../src/format/manifest';
import { BufferUsage } from './adapter';
import { Plan, type WebGpuKernels } from './kernels';
import type { GpuTensor, HostTensor } from './layout';
import { ropeTable } from './rope-table';
import { WebGpuTrunkKernels, type View } from './trunk-kernels';

/** One layer's attention weights in kernel-memory layout; vectors (norms, biases) are f32 tensors of one row. */
export interface AttentionWeights {
  attnNorm: HostTensor;
  q: HostTensor; // (nHead * hd, H)
  k: HostTensor; // (nKv * hd, H)
  v: HostTensor; // (nKv * hd, H)
  o: HostTensor; // (H, nHead * hd)
  qBias?: HostTensor;
  kBias?: HostTensor;
  vBias?: HostTensor;
  qNorm?: HostTensor; // (nHead * hd) for qkNorm 'full', (hd) for 'per_head'
  kNorm?: HostTensor;
}

type GpuWeights = { [K in keyof AttentionWeights]: GpuTensor };

export interface WebGpuTrunkOptions {
  /** positions the KV cache holds */
  capacity: number;
  /** most tokens per call (default 64, the engine's PREFILL_CHUNK) */
  maxChunk?: number;
}

/** What one attention block leaves: the residual stream after it, and the chunk's roped keys and values as cached. */
export interface AttentionBlockResult {
  x: Float32Array; // (nTok, H)
  k: Float32Array; // (nTok, nKv * hd)
  v: Float32Array;
}

export class WebGpuTrunk {
  private readonly ops: WebGpuTrunkKernels;
  private readonly weights: GpuWeights[];
  private readonly kCache: GPUBuffer[] = [];
  private readonly vCache: GPUBuffer[] = [];
  /** positions 0..filled[l]-1 of layer l's cache hold keys and values */
  private readonly filled: number[];
  private readonly buffers: GPUBuffer[] = [];
  private readonly table: GPUBuffer;
  private readonly s: { x: GPUBuffer; h: GPUBuffer; q: GPUBuffer; attn: GPUBuffer; tmp: GPUBuffer; kNew: GPUBuffer; vNew: GPUBuffer };
  private readonly maxChunk: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly kernels: WebGpuKernels, readonly arch: Architecture, layers: readonly AttentionWeights[], readonly opts: WebGpuTrunkOptions) {
    const a = arch;
    const H = a.hiddenSize;
    const qDim = a.numHeads * a.headDim;
    const kvDim = a.numKvHeads * a.headDim;
    if (layers.length !== a.numLayers) throw new RangeError(`webgpu trunk: ${layers.length} layers of weights, the architecture has ${a.numLayers}`);
    if (!(Number.isInteger(opts.capacity) && opts.capacity > 0)) throw new RangeError(`webgpu trunk: capacity ${opts.capacity}`);
    this.maxChunk = opts.maxChunk ?? 64;
    this.ops = new WebGpuTrunkKernels(kernels);
    this.weights = layers.map((w, l) => upload(kernels, w, a, l));
    const device = kernels.gpu.device;
    const make = (floats: number, label: string) => {
      const b = device.createBuffer({ size: Math.max(16, floats * 4), usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST, label });
      this.buffers.push(b);
      return b;
    };
    for (let l = 0; l < a.numLayers; l++) {
      this.kCache.push(make(opts.capacity * kvDim, `k cache ${l}`));
      this.vCache.push(make(opts.capacity * kvDim, `v cache ${l}`));
    }
    this.filled = new Array(a.numLayers).fill(0);
    const C = this.maxChunk;
    this.s = {
      x: make(C * H, 'x'), h: make(C * H, 'h'), q: make(C * qDim, 'q'), attn: make(C * qDim, 'attn'), tmp: make(C * H, 'tmp'),
      kNew: make(C * kvDim, 'k new'), vNew: make(C * kvDim, 'v new'),
    };
    const tab = ropeTable(a.ropeTheta, a.headDim, opts.capacity);
    this.table = make(tab.length, 'rope table');
    device.queue.writeBuffer(this.table, 0, tab);
  }

  /**
   * Layer `layer`'s attention block for tokens at positions pos0..pos0+nTok-1, x (nTok, H) the residual stream
   * entering it; their keys and values are added to the layer's cache. Positions before pos0 must be cached.
   * Calls run one after another (the chunk's scratch buffers are shared).
   */
  attentionBlock(layer: number, x: Float32Array, pos0: number): Promise<AttentionBlockResult> {
    const run = this.queue.then(() => this.encodeAndRun(layer, x, pos0));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Forgets the cached positions (the buffers stay for the next sequence). */
  reset(): void {
    this.filled.fill(0);
  }

  destroy(): void {
    for (const b of this.buffers.splice(0)) b.destroy();
  }

  private async encodeAndRun(layer: number, x: Float32Array, pos0: number): Promise<AttentionBlockResult> {
    const a = this.arch;
    const H = a.hiddenSize;
    const hd = a.headDim;
    const qDim = a.numHeads * hd;
    const kvDim = a.numKvHeads * hd;
    const T = x.length / H;
    if (!(layer >= 0 && layer < a.numLayers && Number.isInteger(layer))) throw new RangeError(`webgpu trunk: no layer ${layer}`);
    if (!(Number.isInteger(T) && T >= 1 && T <= this.maxChunk)) throw new RangeError(`webgpu trunk: x holds ${x.length / H} rows of ${H}, want 1..${this.maxChunk}`);
    if (!(Number.isInteger(pos0) && pos0 >= 0 && pos0 <= this.filled[layer])) throw new RangeError(`webgpu trunk: pos0 ${pos0}, but layer ${layer} caches ${this.filled[layer]} positions`);
    if (pos0 + T > this.opts.capacity) throw new RangeError(`webgpu trunk: positions up to ${pos0 + T} exceed the capacity ${this.opts.capacity}`);
    const W = this.weights[layer];
    const { ops, s } = this;
    const wv = (t: GpuTensor): View => ({ buf: this.kernels.bufferOf(t), off: t.q });
    const plan = new Plan();
    this.kernels.gpu.device.queue.writeBuffer(s.x, 0, x as Float32Array<ArrayBuffer>);

    await ops.rmsNorm(plan, { buf: s.x }, wv(W.attnNorm), { buf: s.h }, H, T, a.rmsNormEps);
    await ops.matmul(plan, W.q, s.h, s.q, T);
    await ops.matmul(plan, W.k, s.h, s.kNew, T);
    await ops.matmul(plan, W.v, s.h, s.vNew, T);
    // biases: one row added to each token's row (forward.ts's addRows)
    if (W.qBias) await ops.addScaled(plan, { buf: s.q }, wv(W.qBias), 1, T * qDim, qDim);
    if (W.kBias) await ops.addScaled(plan, { buf: s.kNew }, wv(W.kBias), 1, T * kvDim, kvDim);
    if (W.vBias) await ops.addScaled(plan, { buf: s.vNew }, wv(W.vBias), 1, T * kvDim, kvDim);
    if (a.qkNorm === 'full') {
      await ops.rmsNorm(plan, { buf: s.q }, wv(W.qNorm!), { buf: s.q }, qDim, T, a.rmsNormEps);
      await ops.rmsNorm(plan, { buf: s.kNew }, wv(W.kNorm!), { buf: s.kNew }, kvDim, T, a.rmsNormEps);
    } else if (a.qkNorm === 'per_head') {
      await ops.rmsNorm(plan, { buf: s.q }, wv(W.qNorm!), { buf: s.q }, hd, T * a.numHeads, a.rmsNormEps);
      await ops.rmsNorm(plan, { buf: s.kNew }, wv(W.kNorm!), { buf: s.kNew }, hd, T * a.numKvHeads, a.rmsNormEps);
    }
    await ops.rope(plan, { buf: s.q }, { buf: this.table }, T, a.numHeads, hd, hd, pos0, a.ropeLayout);
    await ops.rope(plan, { buf: s.kNew }, { buf: this.table }, T, a.numKvHeads, hd, hd, pos0, a.ropeLayout);
    const kRows: View = { buf: this.kCache[layer], off: pos0 * kvDim };
    const vRows: View = { buf: this.vCache[layer], off: pos0 * kvDim };
    ops.copy(plan, { buf: s.kNew }, kRows, T * kvDim);
    ops.copy(plan, { buf: s.vNew }, vRows, T * kvDim);
    const shape = { nHead: a.numHeads, nKvHead: a.numKvHeads, headDim: hd, scale: a.attentionMultiplier ?? 1 / Math.sqrt(hd) };
    await ops.attention(plan, { buf: s.q }, { buf: this.kCache[layer] }, { buf: this.vCache[layer] }, { buf: s.attn }, T, pos0, shape);
    await ops.matmul(plan, W.o, s.attn, s.tmp, T);
    await ops.addScaled(plan, { buf: s.x }, { buf: s.tmp }, a.residualMultiplier, T * H);

    plan.reads.push({ buf: s.x, floats: T * H }, { buf: kRows.buf, offset: kRows.off, floats: T * kvDim }, { buf: vRows.buf, offset: vRows.off, floats: T * kvDim });
    const [xOut, k, v] = await this.kernels.run(plan, [0, 1, 2].map((read) => ({ read, offset: 0, floats: plan.reads[read].floats })));
    this.filled[layer] = pos0 + T;
    return { x: xOut, k, v };
  }
}

/** A layer's tensors into the device's weight slabs (one slab per layer), shapes checked against the architecture. */
function upload(kernels: WebGpuKernels, w: AttentionWeights, a: Architecture, layer: number): GpuWeights {
  const H = a.hiddenSize;
  const qDim = a.numHeads * a.headDim;
  const kvDim = a.numKvHeads * a.headDim;
  const normDim = a.qkNorm === 'per_head' ? [a.headDim, a.headDim] : [qDim, kvDim];
  const want: Record<string, [number, number] | undefined> = {
    attnNorm: [1, H], q: [qDim, H], k: [kvDim, H], v: [kvDim, H], o: [H, qDim],
    qBias: [1, qDim], kBias: [1, kvDim], vBias: [1, kvDim], qNorm: [1, normDim[0]], kNorm: [1, normDim[1]],
  };
  const names = Object.keys(want).filter((n) => w[n as keyof AttentionWeights]) as (keyof AttentionWeights)[];
  for (const n of names) {
    const t = w[n]!;
    const [rows, cols] = want[n]!;
    if (t.rows !== rows || t.cols !== cols) throw new RangeError(`webgpu trunk: layer ${layer} ${n} is [${t.rows},${t.cols}], want [${rows},${cols}]`);
    if (want[n]![0] === 1 && t.dtype !== 'f32') throw new RangeError(`webgpu trunk: layer ${layer} ${n} is ${t.dtype}, vectors are f32`);
  }
  if (a.qkNorm !== 'none' && (!w.qNorm || !w.kNorm)) throw new RangeError(`webgpu trunk: layer ${layer} lacks its q/k norms (qkNorm '${a.qkNorm}')`);
  const gpu = kernels.upload(names.map((n) => w[n]!));
  return Object.fromEntries(names.map((n, i) => [n, gpu[i]])) as GpuWeights;
}

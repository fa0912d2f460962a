// WebGpuTrunk: a model's layers on the GPU for one sequence, composed as src/engine/forward.ts composes the Kernels.
// The attention block (norm, q/k/v projections, biases, q/k norms, rope, the new rows into a KV cache of the
// Worker's type, causal GQA attention, o projection, residual add), the MoE norm and the router (logits, softmax,
// top-k) are one submit on weights and a KV cache that stay on the GPU; the routed and shared experts are a second
// (the expert FFN kernels); routing weights and the weighted sum are host arithmetic (moe-host.ts).
import type { KvCacheType } from '../../../src/engine/kv-cache';
import type { Architecture } from '../../../src/format/manifest';
import { QK, isQuantized, quantBytes } from '../../../src/format/quant';
import { BufferUsage } from './adapter';
import { Plan, type FfnJob, type WebGpuKernels } from './kernels';
import type { GpuTensor, HostTensor } from './layout';
import { combineMoe, groupByExpert, routesOf } from './moe-host';
import { ropeTable } from './rope-table';
import { WebGpuTrunkKernels, type GpuCache, type View } from './trunk-kernels';
import { cacheWords, scalesWord } from './wgsl-kv';

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

/** A whole layer: the attention weights, the MoE norm and router, and the shared expert where the model has one. */
export interface LayerWeights extends AttentionWeights {
  ffnNorm: HostTensor;
  router: HostTensor; // (E, H) f32
  shared?: { gate: HostTensor; up: HostTensor; down: HostTensor };
  sharedGate?: HostTensor; // (1, H) f32: sigmoid gate of the shared expert
}

/** A layer's routed experts, resident on the same kernels (e.g. WebGpuExpertDevice.tensors); undefined: absent. */
export type ExpertSource = (layer: number, expert: number) => { gate: GpuTensor; up: GpuTensor; down: GpuTensor } | undefined;

type GpuWeights = { [K in keyof AttentionWeights]: GpuTensor } & {
  ffnNorm?: GpuTensor;
  router?: GpuTensor;
  shared?: { gate: GpuTensor; up: GpuTensor; down: GpuTensor };
  sharedGate?: Float32Array; // applied on the host: one dot per token
};

export interface WebGpuTrunkOptions {
  /** positions the KV cache holds */
  capacity: number;
  /** most tokens per call (default 64, the engine's PREFILL_CHUNK) */
  maxChunk?: number;
  /** the KV cache's type (default f32), as the Worker's KV_CACHE_TYPE: attention reads it as the Worker's would */
  kvType?: KvCacheType;
}

/** A chunk's rows of one layer's K or V cache as stored: values or quants in quant.ts's layout, then f32 scales. */
export interface CacheRows {
  dtype: KvCacheType;
  bytes: Uint8Array; // (nTok, nKv * hd) f32 / f16 values, or q8_0 / q4_0 quants
  scales: Float32Array | null; // q8_0 / q4_0: one per 32-block, widened from f16
}

/** What a block or layer leaves: the residual stream after it, and the chunk's roped keys and values as cached. */
export interface AttentionBlockResult {
  x: Float32Array; // (nTok, H)
  k: CacheRows;
  v: CacheRows;
}

/** Wall ms of layer()'s phases: the attention block and router on the GPU with their read-back (`trunk`), grouping
 * the picks by expert on the host (`route`), the experts on the GPU with upload and read-back (`experts`), the
 * weighted sum on the host (`combine`). */
export interface PhaseMs { trunk: number; route: number; experts: number; combine: number }

export class WebGpuTrunk {
  private readonly ops: WebGpuTrunkKernels;
  private readonly weights: GpuWeights[];
  private readonly kCache: GpuCache[] = [];
  private readonly vCache: GpuCache[] = [];
  readonly kvType: KvCacheType;
  /** positions 0..filled[l]-1 of layer l's cache hold keys and values */
  private readonly filled: number[];
  private readonly buffers: GPUBuffer[] = [];
  private readonly table: GPUBuffer;
  private readonly s: Record<'x' | 'h' | 'q' | 'attn' | 'tmp' | 'kNew' | 'vNew' | 'logits' | 'idx' | 'val', GPUBuffer>;
  private readonly maxChunk: number;
  private queue: Promise<unknown> = Promise.resolve();
  /** When set, every layer() call adds its router picks here: counts[layer][expert] (the prefill call reports them). */
  routeCounts: number[][] | null = null;
  /** when set, layer() adds each phase's wall time to it (bench/gpu/prefill-phases.ts) */
  phaseMs: PhaseMs | null = null;

  constructor(readonly kernels: WebGpuKernels, readonly arch: Architecture, layers: readonly (AttentionWeights | LayerWeights)[], readonly opts: WebGpuTrunkOptions) {
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
      // whole vec4s (the matmul kernels read their input as vec4u), as Plan.buffer does
      const b = device.createBuffer({ size: Math.max(16, Math.ceil(floats / 4) * 16), usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST, label });
      this.buffers.push(b);
      return b;
    };
    const kvType = (this.kvType = opts.kvType ?? 'f32');
    if (isQuantized(kvType) && a.headDim % QK !== 0) throw new RangeError(`webgpu trunk: a ${kvType} KV cache needs headDim % ${QK} == 0, got ${a.headDim}`);
    const words = cacheWords(kvType, opts.capacity * kvDim);
    for (let l = 0; l < a.numLayers; l++) {
      this.kCache.push({ buf: make(words, `k cache ${l}`), dtype: kvType, capacity: opts.capacity });
      this.vCache.push({ buf: make(words, `v cache ${l}`), dtype: kvType, capacity: opts.capacity });
    }
    this.filled = new Array(a.numLayers).fill(0);
    const C = this.maxChunk;
    this.s = {
      x: make(C * H, 'x'), h: make(C * H, 'h'), q: make(C * qDim, 'q'), attn: make(C * qDim, 'attn'), tmp: make(C * H, 'tmp'),
      kNew: make(C * kvDim, 'k new'), vNew: make(C * kvDim, 'v new'),
      logits: make(C * a.numExperts, 'router logits'), idx: make(C * a.topK, 'top-k experts'), val: make(C * a.topK, 'top-k values'),
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
    return this.serial(async () => {
      const { plan, T, rows } = await this.encodeAttention(layer, x, pos0);
      const [xOut, ...cached] = await this.read(plan, [{ buf: this.s.x, floats: T * this.arch.hiddenSize }, ...rows.reads]);
      this.filled[layer] = pos0 + T;
      return { x: xOut, ...rows.decode(cached) };
    });
  }

  /**
   * The whole layer: the attention block, then the MoE block with the routed experts from `experts` and the
   * layer's shared expert: x is the residual stream entering the layer, the result's x the one leaving it.
   */
  layer(layer: number, x: Float32Array, pos0: number, experts: ExpertSource): Promise<AttentionBlockResult> {
    return this.serial(async () => {
      const a = this.arch;
      const H = a.hiddenSize;
      const W = this.weights[layer];
      if (!W.ffnNorm || !W.router) throw new Error(`webgpu trunk: layer ${layer} was given attention weights only`);
      const ph = this.phaseMs;
      let tp = ph ? performance.now() : 0;
      const lap = (k: keyof PhaseMs) => {
        if (!ph) return;
        const now = performance.now();
        ph[k] += now - tp;
        tp = now;
      };
      const { plan, T, rows } = await this.encodeAttention(layer, x, pos0);
      const { ops, s } = this;
      await ops.rmsNorm(plan, { buf: s.x }, this.view(W.ffnNorm), { buf: s.h }, H, T, a.rmsNormEps);
      await ops.matmul(plan, W.router, s.h, s.logits, T);
      if (!a.routerTopKBeforeSoftmax) await ops.softmax(plan, { buf: s.logits }, a.numExperts, T);
      await ops.topK(plan, { buf: s.logits }, a.numExperts, a.topK, T, { buf: s.idx }, { buf: s.val });
      const K = a.topK;
      const [xMid, h, idxBits, val, ...cached] = await this.read(plan, [
        { buf: s.x, floats: T * H }, { buf: s.h, floats: T * H }, { buf: s.idx, floats: T * K }, { buf: s.val, floats: T * K }, ...rows.reads,
      ]);
      lap('trunk');
      const { k, v } = rows.decode(cached);
      this.filled[layer] = pos0 + T;
      const routes = routesOf(new Int32Array(idxBits.buffer, idxBits.byteOffset, idxBits.length), val, T, a);
      if (this.routeCounts) for (const slots of routes) for (const r of slots) this.routeCounts[layer][r.expert]++;
      const work = groupByExpert(routes, h, H);
      const jobs: FfnJob[] = work.map((w) => {
        const e = experts(layer, w.expert);
        if (!e) throw new Error(`webgpu trunk: expert ${layer}/${w.expert} is not resident`);
        return { ...e, x: w.x, n: w.pairs.length };
      });
      if (W.shared) jobs.push({ ...W.shared, x: h, n: T });
      lap('route');
      const outputs = await this.kernels.ffn(jobs);
      lap('experts');
      const shared = W.shared ? { y: outputs[work.length], gate: W.sharedGate ? gateLogits(W.sharedGate, h, T) : null } : null;
      const out = { x: combineMoe(xMid, routes, work, outputs, shared, a), k, v };
      lap('combine');
      return out;
    });
  }

  /**
   * A prompt through every layer, layer by layer: all of x (n, H, the embedded tokens at positions pos0..) through
   * layer 0 in chunks of maxChunk, then through layer 1, ... (a chunk's attention needs only the earlier chunks of
   * its own layer), so each layer's keys and values are complete, and handed to `onLayer`, before the next layer
   * starts: the order a KV stream to the Worker wants. Returns the residual stream after the last layer.
   */
  async prefill(x: Float32Array, pos0: number, experts: ExpertSource, onLayer?: (layer: number, k: CacheRows[], v: CacheRows[]) => void | Promise<void>): Promise<Float32Array> {
    const H = this.arch.hiddenSize;
    const n = x.length / H;
    if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`webgpu trunk: prefill of ${x.length} values, not rows of ${H}`);
    const cur = x.slice();
    for (let l = 0; l < this.arch.numLayers; l++) {
      const k: CacheRows[] = [];
      const v: CacheRows[] = [];
      for (let t0 = 0; t0 < n; t0 += this.maxChunk) {
        const t1 = Math.min(n, t0 + this.maxChunk);
        const r = await this.layer(l, cur.subarray(t0 * H, t1 * H), pos0 + t0, experts);
        cur.set(r.x, t0 * H);
        k.push(r.k);
        v.push(r.v);
      }
      await onLayer?.(l, k, v);
    }
    return cur;
  }

  /** out (rows, H) = rmsNorm(x) * w: the output norm before the head (w: the model's output norm vector). */
  outputNorm(x: Float32Array, w: HostTensor): Promise<Float32Array> {
    return this.serial(async () => {
      const H = this.arch.hiddenSize;
      const rows = x.length / H;
      if (!(Number.isInteger(rows) && rows >= 1 && rows <= this.maxChunk)) throw new RangeError(`webgpu trunk: ${x.length} values are not 1..${this.maxChunk} rows of ${H}`);
      if (w.dtype !== 'f32' || w.rows * w.cols !== H) throw new RangeError(`webgpu trunk: the output norm is [${w.rows},${w.cols}] ${w.dtype}, want ${H} f32`);
      const plan = new Plan();
      const device = this.kernels.gpu.device;
      device.queue.writeBuffer(this.s.x, 0, x as Float32Array<ArrayBuffer>);
      device.queue.writeBuffer(this.s.tmp, 0, floats(w));
      await this.ops.rmsNorm(plan, { buf: this.s.x }, { buf: this.s.tmp }, { buf: this.s.h }, H, rows, this.arch.rmsNormEps);
      const [out] = await this.read(plan, [{ buf: this.s.h, floats: rows * H }]);
      return out;
    });
  }

  /** Forgets the cached positions (the buffers stay for the next sequence). */
  reset(): void {
    this.filled.fill(0);
  }

  destroy(): void {
    for (const b of this.buffers.splice(0)) b.destroy();
  }

  private serial<R>(f: () => Promise<R>): Promise<R> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private view(t: GpuTensor): View {
    return { buf: this.kernels.bufferOf(t), off: t.q };
  }

  private async read(plan: Plan, reads: { buf: GPUBuffer; offset?: number; floats: number }[]): Promise<Float32Array[]> {
    plan.reads.push(...reads);
    return this.kernels.run(plan, reads.map((r, read) => ({ read, offset: 0, floats: r.floats })));
  }

  /** The attention block's steps; x is written to the chunk's residual buffer. Returns the new K and V rows to read. */
  private async encodeAttention(layer: number, x: Float32Array, pos0: number) {
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
    const wv = (t: GpuTensor) => this.view(t);
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
    await ops.storeRows(plan, { buf: s.kNew }, this.kCache[layer], kvDim, pos0, T);
    await ops.storeRows(plan, { buf: s.vNew }, this.vCache[layer], kvDim, pos0, T);
    const shape = { nHead: a.numHeads, nKvHead: a.numKvHeads, headDim: hd, scale: a.attentionMultiplier ?? 1 / Math.sqrt(hd) };
    await ops.attention(plan, { buf: s.q }, this.kCache[layer], this.vCache[layer], { buf: s.attn }, T, pos0, shape);
    await ops.matmul(plan, W.o, s.attn, s.tmp, T);
    await ops.addScaled(plan, { buf: s.x }, { buf: s.tmp }, a.residualMultiplier, T * H);
    return { plan, T, rows: this.cacheRows(layer, pos0, T) };
  }

  /** Reads of rows pos0..pos0+T-1 of a layer's K and V caches as stored, and their decoding into CacheRows. */
  private cacheRows(layer: number, pos0: number, T: number) {
    const dtype = this.kvType;
    const kvDim = this.arch.numKvHeads * this.arch.headDim;
    const quant = isQuantized(dtype);
    const rowsOf = (c: GpuCache) => {
      const r = [{ buf: c.buf as GPUBuffer, offset: quantBytes(dtype, pos0 * kvDim) / 4, floats: quantBytes(dtype, T * kvDim) / 4 }];
      if (quant) r.push({ buf: c.buf as GPUBuffer, offset: scalesWord(dtype, c.capacity * kvDim) + (pos0 * kvDim) / QK, floats: (T * kvDim) / QK });
      return r;
    };
    const per = quant ? 2 : 1;
    const rows = (got: Float32Array[]): CacheRows => ({
      dtype,
      bytes: new Uint8Array(got[0].buffer, got[0].byteOffset, got[0].byteLength),
      scales: quant ? got[1] : null,
    });
    return {
      reads: [...rowsOf(this.kCache[layer]), ...rowsOf(this.vCache[layer])],
      decode: (got: Float32Array[]) => ({ k: rows(got.slice(0, per)), v: rows(got.slice(per, 2 * per)) }),
    };
  }
}

/** The shared expert's gate logit of each token: (1, H) f32 weights . h row, summed in double, stored as f32. */
function gateLogits(w: Float32Array, h: Float32Array, T: number): Float64Array {
  const H = w.length;
  const g = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let s = 0;
    for (let i = 0; i < H; i++) s += w[i] * h[t * H + i];
    g[t] = Math.fround(s);
  }
  return g;
}

/** A layer's tensors into the device's weight slabs (one slab per layer), shapes checked against the architecture. */
function upload(kernels: WebGpuKernels, w: AttentionWeights | LayerWeights, a: Architecture, layer: number): GpuWeights {
  const H = a.hiddenSize;
  const qDim = a.numHeads * a.headDim;
  const kvDim = a.numKvHeads * a.headDim;
  const normDim = a.qkNorm === 'per_head' ? [a.headDim, a.headDim] : [qDim, kvDim];
  const vectors: Record<string, number> = { attnNorm: H, qBias: qDim, kBias: kvDim, vBias: kvDim, qNorm: normDim[0], kNorm: normDim[1], ffnNorm: H, sharedGate: H };
  const matrices: Record<string, [number, number]> = { q: [qDim, H], k: [kvDim, H], v: [kvDim, H], o: [H, qDim], router: [a.numExperts, H] };
  const full = w as Partial<LayerWeights>;
  const given = (n: string) => (full as Record<string, unknown>)[n] !== undefined;
  const names = [...Object.keys(vectors), ...Object.keys(matrices)].filter((n) => given(n) && n !== 'sharedGate');
  const check = (n: string, t: HostTensor, rows: number, cols: number, vector: boolean) => {
    if (t.rows !== rows || t.cols !== cols) throw new RangeError(`webgpu trunk: layer ${layer} ${n} is [${t.rows},${t.cols}], want [${rows},${cols}]`);
    if (vector && t.dtype !== 'f32') throw new RangeError(`webgpu trunk: layer ${layer} ${n} is ${t.dtype}, vectors are f32`);
  };
  for (const n of [...names, ...(given('sharedGate') ? ['sharedGate'] : [])]) {
    const t = (full as Record<string, HostTensor>)[n];
    if (n in vectors) check(n, t, 1, vectors[n], true);
    else check(n, t, ...matrices[n], false);
  }
  if (a.qkNorm !== 'none' && (!w.qNorm || !w.kNorm)) throw new RangeError(`webgpu trunk: layer ${layer} lacks its q/k norms (qkNorm '${a.qkNorm}')`);
  const gpu = kernels.upload(names.map((n) => (full as Record<string, HostTensor>)[n]));
  const out = Object.fromEntries(names.map((n, i) => [n, gpu[i]])) as unknown as GpuWeights;
  if (full.shared) {
    const { gate, up, down } = full.shared;
    const I = gate.rows;
    check('shared gate', gate, I, H, false);
    check('shared up', up, I, H, false);
    check('shared down', down, H, I, false);
    const [g, u, d] = kernels.upload([gate, up, down]); // one slab: the FFN kernel reads an expert from one buffer
    out.shared = { gate: g, up: u, down: d };
  }
  if (full.sharedGate) out.sharedGate = floats(full.sharedGate);
  return out;
}

/** An f32 tensor's values (a copy: its bytes may sit at any offset of a shard). */
function floats(t: HostTensor): Float32Array<ArrayBuffer> {
  return new Float32Array(t.data.slice(0, t.rows * t.cols * 4).buffer);
}

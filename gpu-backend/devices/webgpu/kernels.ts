// The WebGPU expert kernels: compiled pipelines, and calls that run every job of a batch (expert FFNs or plain
// matmuls) in one command buffer with one readback. Jobs with the same dtypes and shapes share their dispatches:
// prepare x, gate/up + SwiGLU, prepare the hidden, down, each once per weight slab they touch.
import { QK, type DType } from '../../../src/format/quant';
import { BufferUsage, MapMode, type Gpu } from './adapter';
import { WeightSlabs, type GpuTensor, type HostTensor } from './layout';
import {
  PARAM_STRIDE, PREP_WG, ROWS, TILE_WORDS, actFlavor, matmulShader, quantizeQ8Shader, roundF16Shader, type ActFlavor,
} from './wgsl';

export interface FfnJob { gate: GpuTensor; up: GpuTensor; down: GpuTensor; x: Float32Array; n: number }
export interface MatmulJob { w: GpuTensor; x: Float32Array; n: number }

const MAX_GRID = 65535; // WebGPU's default maxComputeWorkgroupsPerDimension
const MAX_TILE = 8; // tokens per tile (registers per thread grow with it)

/** A buffer of one call, created when the call is submitted. */
export interface BufRef { ref: number }
/** A storage buffer a step reads or writes: one of the call's own, or one that outlives it (weights, a KV cache). */
export type Buf = GPUBuffer | BufRef;
export type Binding = Buf | { param: number } | 'tiles';
/** A dispatch, or a copy between buffers (offsets and size in bytes, multiples of 4; it ends the compute pass). */
type Step =
  | { pipeline: GPUComputePipeline; bindings: Binding[]; grid: [number, number] }
  | { copy: { src: Buf; srcOffset: number; dst: Buf; dstOffset: number; bytes: number } };
/** Where a call's output lies in what comes back: read `read` of the plan, `floats` values from `offset` (-1: empty). */
export interface Slice { read: number; offset: number; floats: number }

/** Everything one call submits, collected first so that buffers, bind groups and the submit happen in one go. */
export class Plan {
  readonly buffers: { size: number; usage: number; data?: Float32Array<ArrayBuffer> }[] = [];
  readonly params: number[][] = [];
  readonly tiles: number[] = [];
  readonly steps: Step[] = [];
  /** outputs copied back: `floats` values of `buf` from element `offset` */
  readonly reads: { buf: Buf; floats: number; offset?: number }[] = [];

  buffer(floats: number, usage: number, data?: Float32Array<ArrayBuffer>): BufRef {
    this.buffers.push({ size: Math.max(16, Math.ceil(floats / 4) * 16), usage, data }); // whole vec4s: shaders read vec4u
    return { ref: this.buffers.length - 1 };
  }

  /** A uniform block of at most PARAM_STRIDE / 4 words (f32 values go in as their bits, see f32Bits). */
  param(values: number[]): { param: number } {
    if (values.length > PARAM_STRIDE / 4) throw new RangeError(`webgpu: ${values.length} parameter words exceed one block`);
    this.params.push(values);
    return { param: this.params.length - 1 };
  }
}

/** One set of tokens through one weight matrix (or gate+up pair): rows tok0..tok0+n-1 of the activations. */
interface TokenRun { tok0: number; n: number; mats: GpuTensor[] }

export class WebGpuKernels {
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly slabs: WeightSlabs;
  private lost: string | null = null;

  /** `slabBytes` caps the weight buffers below the adapter's binding limit (tests use it to spread experts). */
  constructor(readonly gpu: Gpu, slabBytes = Infinity) {
    const limits = gpu.device.limits;
    const maxSlab = Math.floor(Math.min(slabBytes, limits.maxStorageBufferBindingSize, limits.maxBufferSize) / 256) * 256;
    this.slabs = new WeightSlabs(gpu.device, maxSlab, BufferUsage.STORAGE | BufferUsage.COPY_DST);
    void gpu.device.lost.then((info) => { this.lost = info.message || info.reason || 'device lost'; });
  }

  get description(): string { return this.gpu.description; }
  /** Weight buffers in use (one dispatch per slab a batch touches). */
  get slabCount(): number { return this.slabs.buffers.length; }

  /** The weight buffer a resident tensor lies in (its `q` and `s` are word offsets into it). */
  bufferOf(t: GpuTensor): GPUBuffer {
    return this.slabs.buffers[t.slab];
  }

  /** Uploads tensors (kept together in one slab). */
  upload(tensors: HostTensor[]): GpuTensor[] {
    this.check();
    return this.slabs.upload(tensors);
  }

  /** Y_j (n_j, H) = down(silu(gate X_j) * up X_j) for every job, in job order. */
  async ffn(jobs: readonly FfnJob[]): Promise<Float32Array[]> {
    const plan = new Plan();
    const classes = groupBy(jobs, (j) => `${j.gate.dtype}/${j.up.dtype}/${j.down.dtype}/${j.gate.rows}x${j.gate.cols}`);
    const slices: Slice[] = new Array(jobs.length);
    for (const idx of classes) {
      const { gate, up, down } = jobs[idx[0]];
      const I = gate.rows;
      const H = gate.cols;
      for (const i of idx) checkFfn(jobs[i]);
      if (actFlavor(gate.dtype) !== actFlavor(up.dtype)) throw new Error(`webgpu: gate ${gate.dtype} and up ${up.dtype} need different inputs`);
      const { x, runs, nTok } = concat(idx.map((i) => jobs[i]), H, (j) => [j.gate, j.up]);
      if (nTok === 0) { for (const i of idx) slices[i] = { read: -1, offset: 0, floats: 0 }; continue; }
      const xBuf = plan.buffer(x.length, BufferUsage.STORAGE | BufferUsage.COPY_DST, x);
      const a1 = await this.prepare(plan, xBuf, actFlavor(gate.dtype), nTok * H);
      const hidden = plan.buffer(nTok * I, BufferUsage.STORAGE);
      await this.matmulSteps(plan, [gate.dtype, up.dtype], runs, a1, hidden, I, H);
      const a2 = await this.prepare(plan, hidden, actFlavor(down.dtype), nTok * I);
      const y = plan.buffer(nTok * H, BufferUsage.STORAGE | BufferUsage.COPY_SRC);
      await this.matmulSteps(plan, [down.dtype], runs.map((r, k) => ({ ...r, mats: [jobs[idx[k]].down] })), a2, y, H, I);
      plan.reads.push({ buf: y, floats: nTok * H });
      idx.forEach((i, k) => { slices[i] = { read: plan.reads.length - 1, offset: runs[k].tok0 * H, floats: runs[k].n * H }; });
    }
    return this.run(plan, slices);
  }

  /** Y_j (n_j, rows) = X_j (n_j, cols) @ W_j^T for every job, in job order. */
  async matmul(jobs: readonly MatmulJob[]): Promise<Float32Array[]> {
    const plan = new Plan();
    const classes = groupBy(jobs, (j) => `${j.w.dtype}/${j.w.rows}x${j.w.cols}`);
    const slices: Slice[] = new Array(jobs.length);
    for (const idx of classes) {
      const { rows, cols, dtype } = jobs[idx[0]].w;
      for (const i of idx) checkInput(jobs[i], cols);
      const { x, runs, nTok } = concat(idx.map((i) => jobs[i]), cols, (j) => [j.w]);
      if (nTok === 0) { for (const i of idx) slices[i] = { read: -1, offset: 0, floats: 0 }; continue; }
      const xBuf = plan.buffer(x.length, BufferUsage.STORAGE | BufferUsage.COPY_DST, x);
      const a = await this.prepare(plan, xBuf, actFlavor(dtype), nTok * cols);
      const y = plan.buffer(nTok * rows, BufferUsage.STORAGE | BufferUsage.COPY_SRC);
      await this.matmulSteps(plan, [dtype], runs, a, y, rows, cols);
      plan.reads.push({ buf: y, floats: nTok * rows });
      idx.forEach((i, k) => { slices[i] = { read: plan.reads.length - 1, offset: runs[k].tok0 * rows, floats: runs[k].n * rows }; });
    }
    return this.run(plan, slices);
  }

  /**
   * Steps of y (nTok, w.rows) = x (nTok, w.cols) @ W^T between buffers of a plan (the trunk's matmuls: input and
   * output stay on the GPU). x is f32; it is prepared (q8_0, f16) as for the expert calls.
   */
  async encodeMatmul(plan: Plan, w: GpuTensor, x: Buf, y: Buf, nTok: number): Promise<void> {
    if (!Number.isInteger(nTok) || nTok < 1) throw new RangeError(`webgpu: matmul of ${nTok} tokens`);
    const a = await this.prepare(plan, x, actFlavor(w.dtype), nTok * w.cols);
    await this.matmulSteps(plan, [w.dtype], [{ tok0: 0, n: nTok, mats: [w] }], a, y, w.rows, w.cols);
  }

  destroy(): void {
    this.slabs.destroy();
    this.gpu.device.destroy();
  }

  // ---- planning ----

  /** The input a matmul of `flavor` reads: x itself (f32), x rounded to f16, or q8_0 quants followed by scales. */
  private async prepare(plan: Plan, src: Buf, flavor: ActFlavor, elements: number): Promise<{ act: Buf; scales: number }> {
    if (flavor === 'f32') return { act: src, scales: 0 };
    if (flavor === 'f16') {
      const act = plan.buffer(elements, BufferUsage.STORAGE);
      const pipeline = await this.pipeline('round-f16', roundF16Shader);
      plan.steps.push({ pipeline, bindings: [src, act, plan.param([elements, 0])], grid: prepGrid(elements) });
      return { act, scales: 0 };
    }
    const blocks = elements / QK;
    const act = plan.buffer(elements / 4 + blocks, BufferUsage.STORAGE);
    const pipeline = await this.pipeline('quantize-q8', quantizeQ8Shader);
    plan.steps.push({ pipeline, bindings: [src, act, plan.param([blocks, elements / 4])], grid: prepGrid(blocks) });
    return { act, scales: elements / 4 };
  }

  /** Dispatches of out (nTok, rows) = act (nTok, cols) @ W^T for every run, one per slab (and per 65535 tiles). */
  private async matmulSteps(plan: Plan, dtypes: DType[], runs: TokenRun[], a: { act: Buf; scales: number }, out: Buf, rows: number, cols: number): Promise<void> {
    // decode (one token per expert) gets its own pipeline; anything else tiles by MAX_TILE tokens
    const tile = runs.some((r) => r.n > 1) ? MAX_TILE : 1;
    const dot4 = this.gpu.dot4;
    const pipeline = await this.pipeline(`matmul ${dtypes.join(',')} tile ${tile} dot4 ${dot4}`, () => matmulShader({ dtypes, tile, dot4 }));
    const rowGroups = Math.ceil(rows / ROWS);
    if (rowGroups > MAX_GRID) throw new RangeError(`webgpu: ${rows} rows exceed one dispatch`);
    for (const runsOfSlab of groupBy(runs, (r) => String(r.mats[0].slab))) {
      const slab = this.slabs.buffers[runs[runsOfSlab[0]].mats[0].slab];
      const first = plan.tiles.length / TILE_WORDS;
      for (const k of runsOfSlab) {
        const { tok0, n, mats } = runs[k];
        for (let t = 0; t < n; t += tile) {
          plan.tiles.push(tok0 + t, Math.min(tile, n - t));
          for (let m = 0; m < 2; m++) plan.tiles.push(mats[m]?.q ?? 0, mats[m]?.s ?? 0);
        }
      }
      const count = plan.tiles.length / TILE_WORDS - first;
      for (let base = 0; base < count; base += MAX_GRID) {
        const param = plan.param([rows, cols, first + base, a.scales]);
        plan.steps.push({ pipeline, bindings: [slab, a.act, 'tiles', out, param], grid: [rowGroups, Math.min(MAX_GRID, count - base)] });
      }
    }
  }

  /** The compiled pipeline of `key` (compiled once, from `source`). */
  pipeline(key: string, source: () => string): Promise<GPUComputePipeline> {
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.gpu.device.createShaderModule({ code: source(), label: key });
      p = this.gpu.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
      p.catch(() => this.pipelines.delete(key)); // a failed compile is reported to its caller, and retried next time
      this.pipelines.set(key, p);
    }
    return p;
  }

  // ---- submission ----

  /** Creates the call's buffers, records and submits every step, reads all outputs back with one map. */
  async run(plan: Plan, slices: Slice[]): Promise<Float32Array[]> {
    this.check();
    if (plan.steps.length === 0) return slices.map(() => new Float32Array(0));
    const device = this.gpu.device;
    const created: GPUBuffer[] = [];
    // No await between push and pop: concurrent calls cannot interleave their scopes.
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let recorded: { staging: GPUBuffer; readOffsets: number[] } | undefined;
    let thrown: unknown;
    try {
      recorded = this.record(plan, created);
    } catch (e) {
      thrown = e;
    }
    const validation = device.popErrorScope();
    const oom = device.popErrorScope();
    const error = (await validation) ?? (await oom);
    try {
      if (thrown !== undefined) throw thrown;
      if (error || !recorded) throw new Error(`webgpu: ${error?.message ?? 'nothing recorded'}`);
      const { staging, readOffsets } = recorded;
      await staging.mapAsync(MapMode.READ);
      const all = new Float32Array(staging.getMappedRange());
      return slices.map((s) => {
        if (s.read < 0) return new Float32Array(0);
        const at = readOffsets[s.read] + s.offset;
        return all.slice(at, at + s.floats);
      });
    } finally {
      for (const b of created) b.destroy();
    }
  }

  private record(plan: Plan, created: GPUBuffer[]): { staging: GPUBuffer; readOffsets: number[] } {
    const device = this.gpu.device;
    const make = (size: number, usage: number, label: string) => {
      const b = device.createBuffer({ size: Math.ceil(size / 4) * 4, usage, label });
      created.push(b);
      return b;
    };
    const bufs = plan.buffers.map((b, i) => {
      const buf = make(b.size, b.usage, `call ${i}`);
      if (b.data) device.queue.writeBuffer(buf, 0, b.data);
      return buf;
    });
    const params = make(plan.params.length * PARAM_STRIDE, BufferUsage.UNIFORM | BufferUsage.COPY_DST, 'params');
    const paramWords = new Uint32Array((plan.params.length * PARAM_STRIDE) / 4);
    plan.params.forEach((v, i) => paramWords.set(v, (i * PARAM_STRIDE) / 4));
    device.queue.writeBuffer(params, 0, paramWords);
    const tiles = make(Math.max(plan.tiles.length, TILE_WORDS) * 4, BufferUsage.STORAGE | BufferUsage.COPY_DST, 'tiles');
    if (plan.tiles.length) device.queue.writeBuffer(tiles, 0, Uint32Array.from(plan.tiles));
    const readOffsets: number[] = [];
    let total = 0;
    for (const r of plan.reads) { readOffsets.push(total); total += r.floats; }
    const staging = make(total * 4, BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'readback');

    const resource = (b: Binding): GPUBindingResource => {
      if (b === 'tiles') return { buffer: tiles };
      if ('param' in b) return { buffer: params, offset: b.param * PARAM_STRIDE, size: PARAM_STRIDE };
      if ('ref' in b) return { buffer: bufs[b.ref] };
      return { buffer: b };
    };
    const encoder = device.createCommandEncoder();
    const buffer = (b: Buf) => ('ref' in b ? bufs[b.ref] : b);
    let pass = encoder.beginComputePass();
    for (const s of plan.steps) {
      if ('copy' in s) {
        pass.end();
        const c = s.copy;
        encoder.copyBufferToBuffer(buffer(c.src), c.srcOffset, buffer(c.dst), c.dstOffset, c.bytes);
        pass = encoder.beginComputePass();
        continue;
      }
      pass.setPipeline(s.pipeline);
      pass.setBindGroup(0, device.createBindGroup({
        layout: s.pipeline.getBindGroupLayout(0),
        entries: s.bindings.map((b, binding) => ({ binding, resource: resource(b) })),
      }));
      pass.dispatchWorkgroups(s.grid[0], s.grid[1]);
    }
    pass.end();
    plan.reads.forEach((r, i) => {
      encoder.copyBufferToBuffer(buffer(r.buf), (r.offset ?? 0) * 4, staging, readOffsets[i] * 4, r.floats * 4);
    });
    device.queue.submit([encoder.finish()]);
    return { staging, readOffsets };
  }

  private check(): void {
    if (this.lost !== null) throw new Error(`webgpu: the device was lost (${this.lost})`);
  }
}

function checkInput(j: { x: Float32Array; n: number }, cols: number): void {
  if (!Number.isInteger(j.n) || j.n < 0 || j.x.length !== j.n * cols) {
    throw new RangeError(`webgpu: x has ${j.x.length} values, want n (${j.n}) x ${cols}`);
  }
}

function checkFfn(j: FfnJob): void {
  const I = j.gate.rows;
  const H = j.gate.cols;
  if (j.up.rows !== I || j.up.cols !== H || j.down.rows !== H || j.down.cols !== I) {
    throw new RangeError(`webgpu: expert shapes gate ${j.gate.rows}x${j.gate.cols}, up ${j.up.rows}x${j.up.cols}, down ${j.down.rows}x${j.down.cols} do not form an FFN`);
  }
  if (j.gate.slab !== j.up.slab || j.gate.slab !== j.down.slab) throw new Error('webgpu: an expert must sit in one slab');
  checkInput(j, H);
}

/** All jobs' inputs as one (nTok, cols) matrix, and where each job's tokens sit in it. */
function concat<J extends { x: Float32Array; n: number }>(jobs: J[], cols: number, mats: (j: J) => GpuTensor[]) {
  const nTok = jobs.reduce((s, j) => s + j.n, 0);
  const x = new Float32Array(nTok * cols);
  const runs: TokenRun[] = [];
  let tok0 = 0;
  for (const j of jobs) {
    x.set(j.x, tok0 * cols);
    runs.push({ tok0, n: j.n, mats: mats(j) });
    tok0 += j.n;
  }
  return { x, runs, nTok };
}

/** Indices of `items` grouped by key, groups in order of first appearance. */
function groupBy<T>(items: readonly T[], key: (t: T) => string): number[][] {
  const m = new Map<string, number[]>();
  items.forEach((t, i) => {
    const k = key(t);
    const list = m.get(k);
    if (list) list.push(i); else m.set(k, [i]);
  });
  return [...m.values()];
}

/** A 2-D grid of PREP_WG-thread workgroups covering `items` (one dimension holds at most 65535). */
function prepGrid(items: number): [number, number] {
  const groups = Math.max(1, Math.ceil(items / PREP_WG));
  const x = Math.min(groups, MAX_GRID);
  return [x, Math.ceil(groups / x)];
}

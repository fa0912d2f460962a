// The trunk's kernels on WebGPU: each call adds its dispatches to a Plan (kernels.ts) over buffers that stay on the
// GPU (a chunk's activations, a layer's KV cache, norm and bias vectors), so a whole layer is one submit. Shapes and
// semantics are those of the Kernels interface (src/kernels/types.ts); the WGSL is in wgsl-trunk.ts.
import { QK, isQuantized, type DType } from '../../../src/format/quant';
import type { AttentionShape, RopeLayout } from '../../../src/kernels/types';
import type { Buf, Plan, WebGpuKernels } from './kernels';
import type { GpuTensor } from './layout';
import {
  ELEM_WG, MAX_HEAD_DIM, addScaledShader, attentionShader, rmsNormShader, ropeShader, scaleShader, softmaxShader, topKShader,
} from './wgsl-trunk';
import { STORE_WG, scalesWord, storeRowsShader } from './wgsl-kv';

/** A tensor in a buffer: `off` is in elements (f32 or u32) from the buffer's start. */
export interface View { buf: Buf; off?: number }

/** A layer's K or V cache: `capacity` positions of one KV cache type, alone in its buffer (wgsl-kv.ts's layout). */
export interface GpuCache { buf: Buf; dtype: DType; capacity: number }

const MAX_GRID = 65535; // WebGPU's default maxComputeWorkgroupsPerDimension

export class WebGpuTrunkKernels {
  constructor(readonly kernels: WebGpuKernels) {}

  /** y (nTok, w.rows) = x (nTok, w.cols) @ W^T, W resident (f32, f16, q8_0, q4_0), x and y f32 on the GPU. */
  matmul(plan: Plan, w: GpuTensor, x: Buf, y: Buf, nTok: number): Promise<void> {
    return this.kernels.encodeMatmul(plan, w, x, y, nTok);
  }

  /** out (rows, n) = rmsNorm of x (rows, n) times w (n); out may be x, or other rows of x's buffer. */
  async rmsNorm(plan: Plan, x: View, w: View, out: View, n: number, rows: number, eps: number): Promise<void> {
    positive({ n, rows });
    if (same(w.buf, out.buf)) throw new RangeError('rmsNorm: w must not share a buffer with out');
    const shared = same(x.buf, out.buf);
    const pipeline = await this.kernels.pipeline(`rms-norm ${shared ? 'shared' : 'apart'}`, () => rmsNormShader(shared));
    const param = plan.param([n, rows, off(x), off(w), off(out), f32Bits(eps)]);
    const bindings = shared ? [x.buf, w.buf, param] : [x.buf, w.buf, out.buf, param];
    plan.steps.push({ pipeline, bindings, grid: grid(rows) });
  }

  /**
   * In-place rotary embedding of x (nTok, nHeads * headDim) at positions pos0..; the first rotDims dims of each
   * head rotate. `table` is ropeTable(base, rotDims, >= pos0 + nTok) (rope-table.ts) in a GPU buffer.
   */
  async rope(plan: Plan, x: View, table: View, nTok: number, nHeads: number, headDim: number, rotDims: number, pos0: number, layout: RopeLayout): Promise<void> {
    positive({ nTok, nHeads, headDim, rotDims });
    if (rotDims % 2 !== 0 || rotDims > headDim) throw new RangeError(`rope: rotDims ${rotDims} must be even and <= headDim ${headDim}`);
    if (same(x.buf, table.buf)) throw new RangeError('rope: the table must not share a buffer with x');
    const half = rotDims / 2;
    const count = nTok * nHeads * half;
    const pipeline = await this.kernels.pipeline('rope', ropeShader);
    // the table's offset folds into pos0: the shader reads ((pos0 + t) * half + i) * 2
    const tabOff = off(table);
    if (tabOff % (half * 2) !== 0) throw new RangeError('rope: the table must start on a position');
    const param = plan.param([nTok, nHeads, headDim, half, off(x), pos0 + tabOff / (half * 2), layout === 'neox' ? 1 : 0, count]);
    plan.steps.push({ pipeline, bindings: [x.buf, table.buf, param], grid: grid(Math.ceil(count / ELEM_WG)) });
  }

  /**
   * out (nTok, nHead * headDim) = causal attention of q (same shape) at positions pos0.. over the caches k, v
   * (capacity >= pos0 + nTok rows of nKvHead * headDim, of any KV cache type). out must not share q's buffer.
   */
  async attention(plan: Plan, q: View, k: GpuCache, v: GpuCache, out: View, nTok: number, pos0: number, shape: AttentionShape): Promise<void> {
    const { nHead, nKvHead, headDim, scale } = shape;
    positive({ nTok, nHead, nKvHead, headDim });
    if (nHead % nKvHead !== 0) throw new RangeError(`attention: nKvHead ${nKvHead} does not divide nHead ${nHead}`);
    if (headDim > MAX_HEAD_DIM) throw new RangeError(`attention: headDim ${headDim} > ${MAX_HEAD_DIM}`);
    if (k.dtype !== v.dtype) throw new RangeError(`attention: K cache ${k.dtype}, V cache ${v.dtype}: one type for both`);
    if (isQuantized(k.dtype) && headDim % QK !== 0) throw new RangeError(`attention: a ${k.dtype} cache needs headDim % ${QK} == 0, got ${headDim}`);
    if (k.capacity < pos0 + nTok || v.capacity < pos0 + nTok) throw new RangeError(`attention: positions up to ${pos0 + nTok} exceed the cache`);
    if (same(q.buf, out.buf) || same(k.buf, out.buf) || same(v.buf, out.buf)) throw new RangeError('attention: out must not share a buffer with q, k or v');
    const pipeline = await this.kernels.pipeline(`attention ${k.dtype}`, () => attentionShader(k.dtype));
    const elements = k.capacity * nKvHead * headDim;
    const param = plan.param([nTok, pos0, nHead, nKvHead, headDim, off(q), 0, 0, off(out), f32Bits(scale), scalesWord(k.dtype, elements), scalesWord(v.dtype, elements)]);
    plan.steps.push({ pipeline, bindings: [q.buf, k.buf, v.buf, out.buf, param], grid: grid(nTok * nHead) });
  }

  /**
   * Rows row0..row0+nRows-1 of `cache` (rows of `cols`) = x (nRows, cols) f32, converted as ggml writes its cache
   * (the Kernels' storeRows: f16 nearest even, q8_0 as quantizeQ8_0 'activation', q4_0 as quantizeQ4_0).
   */
  async storeRows(plan: Plan, x: View, cache: GpuCache, cols: number, row0: number, nRows: number): Promise<void> {
    positive({ cols, nRows });
    if (row0 < 0 || row0 + nRows > cache.capacity) throw new RangeError(`storeRows: rows ${row0}..${row0 + nRows - 1} outside 0..${cache.capacity - 1}`);
    if (same(x.buf, cache.buf)) throw new RangeError('storeRows: x must not share the cache\'s buffer');
    const { dtype } = cache;
    if (dtype === 'f32') return this.copy(plan, x, { buf: cache.buf, off: row0 * cols }, nRows * cols);
    if (dtype === 'f16' ? cols % 2 !== 0 : cols % QK !== 0) throw new RangeError(`storeRows: rows of ${cols} do not fill whole ${dtype} words or blocks`);
    const per = dtype === 'f16' ? 2 : QK; // values per item (a word of halves, a block)
    const count = (nRows * cols) / per;
    const pipeline = await this.kernels.pipeline(`store-rows ${dtype}`, () => storeRowsShader(dtype));
    const param = plan.param([count, off(x), (row0 * cols) / per, scalesWord(dtype, cache.capacity * cols)]);
    plan.steps.push({ pipeline, bindings: [x.buf, cache.buf, param], grid: grid(Math.ceil(count / STORE_WG)) });
  }

  /** In-place softmax over each of `rows` rows of n floats. */
  async softmax(plan: Plan, x: View, n: number, rows: number): Promise<void> {
    positive({ n, rows });
    const pipeline = await this.kernels.pipeline('softmax', softmaxShader);
    plan.steps.push({ pipeline, bindings: [x.buf, plan.param([n, rows, off(x)])], grid: grid(rows) });
  }

  /** idx (rows, k) u32 and val (rows, k) f32: the k largest of each row of x (rows, n), descending, ties by index. */
  async topK(plan: Plan, x: View, n: number, k: number, rows: number, idx: View, val: View): Promise<void> {
    positive({ n, k, rows });
    if (k > n) throw new RangeError(`topK: k ${k} > n ${n}`);
    if (same(x.buf, idx.buf) || same(x.buf, val.buf) || same(idx.buf, val.buf)) throw new RangeError('topK: x, idx and val need three buffers');
    const pipeline = await this.kernels.pipeline('top-k', topKShader);
    const param = plan.param([n, k, rows, off(x), off(idx), off(val)]);
    plan.steps.push({ pipeline, bindings: [x.buf, idx.buf, val.buf, param], grid: grid(rows) });
  }

  /**
   * a (count) += s * b, where b repeats every bLen elements: a residual add (bLen = count) or a bias added to
   * each row (bLen = the row). b may lie in a's buffer (not overlapping a).
   */
  async addScaled(plan: Plan, a: View, b: View, s: number, count: number, bLen = count): Promise<void> {
    positive({ count, bLen });
    if (bLen > count || count % bLen !== 0) throw new RangeError(`addScaled: b of ${bLen} does not tile a of ${count}`);
    const shared = same(a.buf, b.buf);
    const pipeline = await this.kernels.pipeline(`add-scaled ${shared ? 'shared' : 'apart'}`, () => addScaledShader(shared));
    const param = plan.param([count, bLen, off(a), off(b), f32Bits(s)]);
    plan.steps.push({ pipeline, bindings: shared ? [a.buf, param] : [a.buf, b.buf, param], grid: grid(Math.ceil(count / ELEM_WG)) });
  }

  /** dst (floats) = src (floats), e.g. a chunk's roped keys into the cache at its positions. */
  copy(plan: Plan, src: View, dst: View, floats: number): void {
    if (floats < 1) return;
    plan.steps.push({ copy: { src: src.buf, srcOffset: off(src) * 4, dst: dst.buf, dstOffset: off(dst) * 4, bytes: floats * 4 } });
  }

  /** x (count) *= s. */
  async scale(plan: Plan, x: View, s: number, count: number): Promise<void> {
    positive({ count });
    const pipeline = await this.kernels.pipeline('scale', scaleShader);
    plan.steps.push({ pipeline, bindings: [x.buf, plan.param([count, off(x), f32Bits(s)])], grid: grid(Math.ceil(count / ELEM_WG)) });
  }
}

/** The bits of v as an f32 (uniform blocks are written as u32 words). */
export function f32Bits(v: number): number {
  return new Uint32Array(Float32Array.of(v).buffer)[0];
}

const off = (v: View) => v.off ?? 0;

function same(a: Buf, b: Buf): boolean {
  if ('ref' in a && 'ref' in b) return a.ref === b.ref;
  return a === b;
}

function positive(dims: Record<string, number>): void {
  for (const [name, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`webgpu trunk kernel: ${name} = ${v}, want a positive integer`);
  }
}

/** A 2-D grid of `groups` workgroups (one dimension holds at most 65535). */
function grid(groups: number): [number, number] {
  const x = Math.min(Math.max(1, groups), MAX_GRID);
  return [x, Math.ceil(groups / x)];
}

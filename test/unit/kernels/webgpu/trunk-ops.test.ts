// The forms of the WebGPU trunk kernels that the Kernels interface has no call for, so the conformance cases cannot
// reach them: the embedding multiplier (scale), a bias added to every row, many router rows in one dispatch, tensors
// at offsets inside one shared buffer (the aliasing variants), and the refusals of shapes the kernels do not take.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BufferUsage } from '../../../../gpu-backend/devices/webgpu/adapter';
import { acquireGpu } from '../../../../gpu-backend/devices/webgpu/adapter';
import { Plan, WebGpuKernels, type BufRef } from '../../../../gpu-backend/devices/webgpu/kernels';
import { ropeTable } from '../../../../gpu-backend/devices/webgpu/rope-table';
import { SETUP_HINT } from '../../../../gpu-backend/devices/webgpu/software-adapter';
import { WebGpuTrunkKernels } from '../../../../gpu-backend/devices/webgpu/trunk-kernels';
import type { DType } from '../../../../src/format/quant';
import { createReferenceKernels } from '../../../../src/kernels/reference';
import { expectClose, expectExact } from '../harness';
import { ropeF64, rmsNormF64, softmaxF64, topKF64 } from '../naive';
import { Rng } from '../rng';

const gpu = await acquireGpu({ allowSoftware: true });
const kernels = gpu ? new WebGpuKernels(gpu) : null;
const skipReason = kernels ? undefined : `no WebGPU adapter: ${SETUP_HINT}`;
// a machine without an adapter skips, saying why in the title; CI never does: there the suite fails with the reason
const skip = skipReason !== undefined && !process.env.CI;
afterAll(() => kernels?.destroy());

// the conformance suite's tolerances for the same kernels (cases-ops.ts)
const RMS_TOL = 1e-5;
const ADD_TOL = 2.5e-7;
const SOFTMAX_TOL = 1e-5;

/** One plan: buffers from host arrays, steps added by `encode`, the listed buffers read back. */
async function run(encode: (t: WebGpuTrunkKernels, plan: Plan, input: (d: Float32Array) => BufRef) => Promise<[BufRef, number][]>): Promise<Float32Array[]> {
  const plan = new Plan();
  const input = (d: Float32Array) => plan.buffer(d.length, BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC, d.slice());
  const reads = await encode(new WebGpuTrunkKernels(kernels!), plan, input);
  for (const [buf, floats] of reads) plan.reads.push({ buf, floats });
  return kernels!.run(plan, reads.map(([, floats], read) => ({ read, offset: 0, floats })));
}

describe.skipIf(skip)(skip ? `webgpu trunk kernels (skipped: ${skipReason})` : 'webgpu trunk kernels', () => {
  beforeAll(() => {
    if (skipReason) throw new Error(`CI may not skip the WebGPU suite: ${skipReason}`);
  });
  const rng = new Rng(4242);

  it('scale: x * s (the embedding multiplier), correctly rounded', async () => {
    const x = rng.floats(1000, 3);
    const [got] = await run(async (t, plan, input) => {
      const b = input(x);
      await t.scale(plan, { buf: b }, 12, x.length);
      return [[b, x.length]];
    });
    expectExact('scale by 12', got, x.map((v) => Math.fround(v * 12)));
  });

  it('addScaled with a repeating b: a bias added to each of 70 rows, and a residual add inside one buffer', async () => {
    const n = 96;
    const rows = 70;
    const a = rng.floats(rows * n, 2);
    const bias = rng.floats(n, 1);
    const [biased] = await run(async (t, plan, input) => {
      const buf = input(a);
      await t.addScaled(plan, { buf }, { buf: input(bias) }, 1, rows * n, n);
      return [[buf, rows * n]];
    });
    const tol = (i: number) => ADD_TOL * (Math.abs(a[i]) + Math.abs(bias[i % n])) + 1e-30;
    expectClose('bias rows', biased, a.map((v, i) => v + bias[i % n]), tol);
    // a = rows 0..34, b = rows 35..69 of the same buffer (the 'shared' variant), s = granite's 0.22
    const half = (rows / 2) * n;
    const [shared] = await run(async (t, plan, input) => {
      const buf = input(a);
      await t.addScaled(plan, { buf }, { buf, off: half }, 0.22, half);
      return [[buf, rows * n]];
    });
    const s = Math.fround(0.22);
    expectClose('residual add within one buffer', shared.subarray(0, half), a.subarray(0, half).map((v, i) => v + s * a[half + i]),
      (i) => ADD_TOL * (Math.abs(a[i]) + Math.abs(s * a[half + i])) + 1e-30);
    expectExact('rows of b unchanged', shared.subarray(half), a.subarray(half));
  });

  it('rmsNorm into other rows of the same buffer, and from an offset weight vector', async () => {
    const n = 200;
    const rows = 5;
    const x = rng.floats(rows * n, 3);
    const w = rng.floats(n + 7, 1); // the weights start 7 floats in
    const [got] = await run(async (t, plan, input) => {
      const buf = input(Float32Array.from([...x, ...new Float32Array(rows * n)]));
      await t.rmsNorm(plan, { buf }, { buf: input(w), off: 7 }, { buf, off: rows * n }, n, rows, 1e-5);
      return [[buf, 2 * rows * n]];
    });
    expectExact('input rows unchanged', got.subarray(0, rows * n), x);
    const want = rmsNormF64(x, w.subarray(7), n, rows, 1e-5);
    expectClose('normed rows', got.subarray(rows * n), want, (i) => RMS_TOL * Math.abs(want[i]) + 1e-30);
  });

  it('softmax and topK over 70 router rows in one dispatch each, as ts-ref row by row', async () => {
    const E = 40;
    const K = 8;
    const rows = 70;
    const logits = rng.floats(rows * E, 2);
    logits.set([1, 1, 1, 1], 3 * E); // ties in one row: lower index first
    const [idxBits, val, probs] = await run(async (t, plan, input) => {
      const x = input(logits);
      const idx = input(new Float32Array(rows * K));
      const v = input(new Float32Array(rows * K));
      await t.topK(plan, { buf: x }, E, K, rows, { buf: idx }, { buf: v });
      await t.softmax(plan, { buf: x }, E, rows);
      return [[idx, rows * K], [v, rows * K], [x, rows * E]];
    });
    const idx = new Int32Array(idxBits.buffer, idxBits.byteOffset, idxBits.length);
    for (let r = 0; r < rows; r++) {
      const want = topKF64(logits.subarray(r * E, (r + 1) * E), K);
      expectExact(`row ${r} indices`, idx.subarray(r * K, (r + 1) * K), want.idx);
      expectExact(`row ${r} values`, val.subarray(r * K, (r + 1) * K), want.val);
    }
    const want = softmaxF64(logits, E, rows);
    expectClose('probabilities', probs, want, (i) => SOFTMAX_TOL * want[i] + 1e-12);
  });

  // ts-ref computes x*cos - y*sin with two roundings; WGSL lets a compiler fuse either product into an FMA (NVIDIA's
  // Vulkan driver on an H200 did, bench/results/gpu-device.md; lavapipe does not), so the bound is one rounding of
  // the products (|x|, |y| <= 1 here, so 2^-22 absolute covers it): the same table and order, not the same instructions.
  it('rope reads a table that starts at a later position, and matches ts-ref to a rounding', async () => {
    const [nTok, nHeads, hd, rot, pos0, base] = [3, 2, 64, 64, 500, 10000];
    const x = rng.floats(nTok * nHeads * hd, 1);
    const table = ropeTable(base, rot, pos0 + nTok);
    const from = 400; // a view of the table from position 400 on: its position pos0 - 400 is pos0
    const [got] = await run(async (t, plan, input) => {
      const buf = input(x);
      await t.rope(plan, { buf }, { buf: input(table), off: from * rot }, nTok, nHeads, hd, rot, pos0 - from, 'neox');
      return [[buf, x.length]];
    });
    const ref = createReferenceKernels();
    const p = ref.heap.alloc(x.length * 4);
    ref.heap.f32(p, x.length).set(x);
    ref.rope(p, nTok, nHeads, hd, rot, pos0, base, 'neox');
    const want = ref.heap.f32(p, x.length);
    expectClose('vs ts-ref', got, want, () => 2 ** -22);
    const f64 = ropeF64(x, nTok, nHeads, hd, rot, pos0, base, 'neox');
    // cases-ops.ts's rope bound (theta's f32 error grows with the position) for pairs of norm <= sqrt(2)
    expectClose('vs float64', got, f64, () => (3e-6 + 5e-7 * (pos0 + nTok)) * Math.SQRT2);
  });

  it('refuses shapes it does not take, naming them', async () => {
    const t = new WebGpuTrunkKernels(kernels!);
    const plan = new Plan();
    const b = plan.buffer(64, BufferUsage.STORAGE);
    const c = plan.buffer(64, BufferUsage.STORAGE);
    const shape = { nHead: 4, nKvHead: 3, headDim: 16, scale: 0.25 };
    const kv = (buf: BufRef, dtype: DType = 'f32') => ({ buf, dtype, capacity: 4 });
    await expect(t.attention(plan, { buf: b }, kv(b), kv(b), { buf: c }, 1, 0, shape)).rejects.toThrow(/nKvHead 3 does not divide nHead 4/);
    await expect(t.attention(plan, { buf: b }, kv(b), kv(b), { buf: c }, 1, 0, { ...shape, nKvHead: 2, headDim: 512 })).rejects.toThrow(/headDim 512/);
    await expect(t.attention(plan, { buf: b }, kv(c), kv(c), { buf: b }, 1, 0, { ...shape, nKvHead: 2 })).rejects.toThrow(/must not share/);
    await expect(t.attention(plan, { buf: b }, kv(c), kv(c), { buf: b }, 4, 1, { ...shape, nKvHead: 2 })).rejects.toThrow(/exceed the cache/);
    await expect(t.attention(plan, { buf: b }, kv(c, 'q8_0'), kv(c, 'q8_0'), { buf: b }, 1, 0, { ...shape, nKvHead: 2 })).rejects.toThrow(/headDim % 32/);
    await expect(t.attention(plan, { buf: b }, kv(c, 'q8_0'), kv(c, 'f16'), { buf: b }, 1, 0, { ...shape, nKvHead: 2 })).rejects.toThrow(/one type for both/);
    await expect(t.storeRows(plan, { buf: b }, kv(c, 'q4_0'), 48, 0, 1)).rejects.toThrow(/whole q4_0 words or blocks/);
    await expect(t.storeRows(plan, { buf: b }, kv(c, 'f16'), 48, 3, 2)).rejects.toThrow(/outside 0..3/);
    await expect(t.rope(plan, { buf: b }, { buf: c }, 1, 1, 16, 18, 0, 'neox')).rejects.toThrow(/rotDims 18/);
    await expect(t.topK(plan, { buf: b }, 8, 9, 1, { buf: c }, { buf: plan.buffer(16, BufferUsage.STORAGE) })).rejects.toThrow(/k 9 > n 8/);
    await expect(t.rmsNorm(plan, { buf: b }, { buf: c }, { buf: b }, 0, 1, 1e-5)).rejects.toThrow(/n = 0/);
    await expect(t.rmsNorm(plan, { buf: b }, { buf: c }, { buf: c }, 16, 1, 1e-5)).rejects.toThrow(/w must not share/);
    await expect(t.rope(plan, { buf: b }, { buf: b }, 1, 1, 16, 16, 0, 'neox')).rejects.toThrow(/table must not share/);
  });
});

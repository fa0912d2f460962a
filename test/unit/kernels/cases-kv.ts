// Conformance cases for a KV cache of every dtype: attention over an f32 / f16 / q8_0 / q4_0 cache (against ts-ref
// and a float64 definition on the dequantized cache with q converted as K's dot input), and storeRows (bit-exact
// against src/format/quant.ts's quantizers: what ggml writes into its cache).
import { DTYPES, QK, dequantize, f16ToF32, f32ToF16, quantBytes, quantizeQ4_0, quantizeQ8_0, roundF16, type DType } from '../../../src/format/quant';
import type { AttentionShape, Mat } from '../../../src/kernels/types';
import type { Case } from './cases-matmul';
import { expectClose, expectExact } from './harness';
import { attentionReference, poisonedKv } from './cases-ops';
import { Rng } from './rng';

// The tolerance is cases-ops.ts's attention's (attentionReference): a convex combination of V rows; the score error
// is now that of the K dot (exact integer block sums, f32 block terms: a few ulps of |q||k|), hence the same bound
// in terms of max|score|.

const lazy = <T>(f: () => T): (() => T) => {
  let v: T | undefined;
  return () => (v ??= f());
};

/** x (rows, cols) as a cache of `dtype`: quants/values and f32 scales, as quant.ts lays them out. */
function encodeCache(dtype: DType, x: Float32Array): { bytes: Uint8Array; scales: Float32Array; values: Float32Array } {
  if (dtype === 'f32') return { bytes: new Uint8Array(x.slice().buffer), scales: new Float32Array(0), values: x };
  if (dtype === 'f16') {
    const h = Uint16Array.from(x, f32ToF16);
    return { bytes: new Uint8Array(h.buffer), scales: new Float32Array(0), values: Float32Array.from(h, f16ToF32) };
  }
  const q = dtype === 'q8_0' ? quantizeQ8_0(x) : quantizeQ4_0(x);
  return { bytes: q.qs, scales: Float32Array.from(q.d, f16ToF32), values: dequantize(q) };
}

/** q as ggml's flash attention feeds it to K's dot: f32 as is, f16 rounded, q8_0/q4_0 through q8_0 (per 32-block). */
function queryAsDotInput(kType: DType, q: Float32Array): Float32Array {
  if (kType === 'f32') return q;
  if (kType === 'f16') return Float32Array.from(q, roundF16);
  return dequantize(quantizeQ8_0(q));
}

function attentionKvCase(dtype: DType, shape: AttentionShape, nTok: number, pos0: number, seed: number): Case {
  const { nHead, nKvHead, headDim } = shape;
  const capacity = pos0 + nTok + 5;
  const kv = nKvHead * headDim;
  const data = lazy(() => {
    const rng = new Rng(seed);
    // the poison stays finite in every cache type (1e6 would overflow f16)
    const { k, v } = poisonedKv(rng, capacity, kv, pos0 + nTok, 1e4);
    return { q: rng.floats(nTok * nHead * headDim, 1), k: encodeCache(dtype, k), v: encodeCache(dtype, v) };
  });
  const f64 = lazy(() => {
    const { q, k, v } = data();
    const live = (pos0 + nTok) * kv;
    return attentionReference(queryAsDotInput(dtype, q), k.values.subarray(0, live), v.values.subarray(0, live), nTok, pos0, shape);
  });
  const kind = nKvHead === nHead ? 'MHA' : `GQA ${nHead}/${nKvHead}`;
  return {
    name: `attention ${dtype} KV cache ${kind} headDim=${headDim} nTok=${nTok} pos0=${pos0}`,
    exec(k, a) {
      const cache = (e: ReturnType<typeof encodeCache>): Mat => {
        const data = a.alloc(e.bytes.length);
        k.heap.u8(data, e.bytes.length).set(e.bytes);
        const scales = e.scales.length ? a.f32(e.scales) : 0;
        return { dtype, rows: capacity, cols: kv, data, scales };
      };
      const q = a.f32(data().q);
      const n = nTok * nHead * headDim;
      const out = a.alloc(n * 4);
      const kc = cache(data().k);
      const vc = cache(data().v);
      a.op(() => k.attention(q, kc, vc, out, nTok, pos0, shape));
      return [a.read(out, n)];
    },
    verify([got], [ref], label) {
      const { out, tol } = f64();
      expectClose(`${label} vs ts-ref`, got, ref, () => tol);
      expectClose(`${label} vs float64`, got, out, () => tol);
    },
  };
}

function storeRowsCase(dtype: DType, rows: number, cols: number, row0: number, nRows: number, seed: number): Case {
  const data = lazy(() => {
    const rng = new Rng(seed);
    const x = rng.floats(nRows * cols, 2);
    // one block of exact halves after scaling (amax 127: id = 1): ties must round to even, as ggml's nearest
    for (let j = 0; j < QK; j++) x[j] = j === 0 ? 127 : (j % 2 ? 1 : -1) * (j - 0.5);
    if (nRows * cols >= 2 * QK) x.fill(0, QK, 2 * QK); // an all-zero block: d = 0, quants 0
    const before = rng.floats(rows * cols, 1); // what the cache held: rows outside row0.. must keep it
    return { x, before: encodeCache(dtype, before) };
  });
  const want = lazy(() => {
    const { x, before } = data();
    const bytes = before.bytes.slice();
    const scales = before.scales.slice();
    const rowsIn = encodeCache(dtype, x);
    bytes.set(rowsIn.bytes, quantBytes(dtype, row0 * cols));
    if (scales.length) scales.set(rowsIn.scales, (row0 * cols) / QK);
    return { bytes, scales };
  });
  return {
    name: `storeRows ${dtype} ${nRows} rows of ${cols} at row ${row0} of ${rows}`,
    exec(k, a) {
      const { x, before } = data();
      const d = a.alloc(before.bytes.length);
      k.heap.u8(d, before.bytes.length).set(before.bytes);
      const s = before.scales.length ? a.f32(before.scales) : 0;
      const xp = a.f32(x);
      a.op(() => k.storeRows(xp, { dtype, rows, cols, data: d, scales: s }, row0, nRows));
      const bytes = a.readBytes(d, before.bytes.length);
      return [Float32Array.from(bytes), s ? a.read(s, before.scales.length) : new Float32Array(0)];
    },
    verify([bytes, scales], [refBytes, refScales], label) {
      const w = want();
      expectExact(`${label} quants vs quant.ts`, bytes, Float32Array.from(w.bytes));
      expectExact(`${label} scales vs quant.ts`, scales, w.scales);
      expectExact(`${label} quants vs ts-ref`, bytes, refBytes);
      expectExact(`${label} scales vs ts-ref`, scales, refScales);
    },
  };
}

export function kvCases(): Case[] {
  const cases: Case[] = [];
  let seed = 900;
  const gqa = { nHead: 4, nKvHead: 2, headDim: 64, scale: 1 / 8 };
  const mha = { nHead: 2, nKvHead: 2, headDim: 128, scale: 1 / Math.sqrt(128) };
  const narrow = { nHead: 4, nKvHead: 1, headDim: 32, scale: 1 / Math.sqrt(32) };
  for (const dtype of DTYPES) {
    cases.push(attentionKvCase(dtype, gqa, 1, 0, seed++)); // first token
    cases.push(attentionKvCase(dtype, gqa, 1, 13, seed++)); // decode: 14 positions, a 4-wide tail of 2
    cases.push(attentionKvCase(dtype, gqa, 7, 0, seed++)); // prefill
    cases.push(attentionKvCase(dtype, mha, 5, 9, seed++)); // a chunk after a cache
    cases.push(attentionKvCase(dtype, narrow, 2, 30, seed++));
    cases.push(storeRowsCase(dtype, 10, 128, 3, 4, seed++));
    cases.push(storeRowsCase(dtype, 6, 64, 0, 1, seed++));
  }
  // a long prefill's chunk after a cache (issue 15): 65 queries over two key tiles of 64, qwen3's 128-wide heads in
  // GQA 8/2, and a 70-row store into the middle of a cache
  const qwen3 = { nHead: 8, nKvHead: 2, headDim: 128, scale: 1 / Math.sqrt(128) };
  for (const dtype of DTYPES) {
    cases.push(attentionKvCase(dtype, qwen3, 65, 30, seed++));
    cases.push(storeRowsCase(dtype, 140, 256, 64, 70, seed++));
  }
  return cases;
}

// Quick sanity checks of the WASM executors (the cross-executor conformance suite is conformance.test.ts): block
// constants agree with quant.ts, dtype codes with DTYPE_CODE, quantized matmuls match dequantize + f32 dot, SIMD
// equals its scalar twin.
import { describe, expect, it } from 'vitest';
import { QK, dequantize, f16ToF32, f32ToF16, quantize, quantizeQ8_0 } from '../../../src/format/quant';
import { loadNodeKernelModules, loadNodeKernels } from '../../../src/kernels/load-node';
import type { Kernels, Mat } from '../../../src/kernels/types';
import { checkConstants, DTYPE_CODE, instantiateKernels, type WasmKernelOptions, type WasmVariant } from '../../../src/kernels/wasm';
import { EMULATED_SATURATED, engineDotsUnsigned, engineFusesDots, FUSED_SIGNED, FUSED_UNSIGNED } from '../../../src/kernels/fused-dot';
import { supportsRelaxedSimd } from '../../../src/kernels/wasm-features';
import { relaxedDotPaths } from './relaxed-paths';

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function put(k: Kernels, v: Float32Array): number {
  const p = k.heap.alloc(v.length * 4);
  k.heap.f32(p, v.length).set(v);
  return p;
}

function putQuant(k: Kernels, dtype: 'q8_0' | 'q4_0', rows: number, cols: number, values: Float32Array): { mat: Mat; deq: Float32Array } {
  const q = quantize(dtype, values);
  const data = k.heap.alloc(q.qs.length);
  k.heap.u8(data, q.qs.length).set(q.qs);
  const scales = put(k, Float32Array.from(q.d, f16ToF32));
  const mat: Mat = { dtype, rows, cols, data, scales };
  k.packWeights?.(mat); // as the engine places weights: packed where the executor packs
  return { mat, deq: dequantize(q) };
}

/** y = W x in float64 from the dequantized weights and the q8_0-quantized-then-dequantized input. */
function referenceMatvec(deq: Float32Array, rows: number, cols: number, x: Float32Array): Float64Array {
  const xq = dequantize(quantizeQ8_0(x));
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += deq[r * cols + c] * xq[c];
    y[r] = s;
  }
  return y;
}

// the relaxed build on each integer-dot path this engine can run (relaxed-paths.ts), whichever it would pick
const executors: [WasmVariant, WasmKernelOptions?][] = [['scalar'], ['simd'],
  ...(await relaxedDotPaths()).map(([, opts]): [WasmVariant, WasmKernelOptions] => ['relaxed', opts])];

describe('wasm kernels', () => {
  it('export the block constants of src/format/quant.ts', async () => {
    const m = await loadNodeKernelModules();
    for (const mod of [m.simd, m.relaxed]) {
      if (!mod) continue;
      const { ex } = instantiateKernels(mod);
      expect(ex.QK.value).toBe(QK);
      expect(ex.Q8_0_BLOCK_QUANT_BYTES.value).toBe(QK);
      expect(ex.Q4_0_BLOCK_QUANT_BYTES.value).toBe(QK / 2);
    }
  });

  it('export the dtype codes of DTYPE_CODE, and a module whose codes differ is refused at load', async () => {
    const m = await loadNodeKernelModules();
    for (const mod of [m.simd, m.relaxed]) {
      if (!mod) continue;
      const { ex } = instantiateKernels(mod);
      expect([ex.DT_F32.value, ex.DT_F16.value, ex.DT_Q8_0.value, ex.DT_Q4_0.value]).toEqual([DTYPE_CODE.f32, DTYPE_CODE.f16, DTYPE_CODE.q8_0, DTYPE_CODE.q4_0]);
      const swapped = { ...ex, DT_Q8_0: ex.DT_Q4_0, DT_Q4_0: ex.DT_Q8_0 };
      expect(() => checkConstants(swapped)).toThrow(`wasm kernels: DT_Q8_0 is ${DTYPE_CODE.q4_0}, DTYPE_CODE in src/kernels/wasm.ts says ${DTYPE_CODE.q8_0}`);
      const { DT_F16: _, ...older } = ex; // a module built before the codes were exported
      expect(() => checkConstants(older as typeof ex)).toThrow(/DT_F16 is undefined/);
    }
  });

  const noRelaxed = supportsRelaxedSimd() ? '' : ` (skipped: relaxed SIMD is not supported by this runtime, Node ${process.versions.node})`;
  it.skipIf(noRelaxed !== '')(`the relaxed executor takes fused dot-adds exactly where the engine lowers them to one instruction${noRelaxed}`, async () => {
    const { relaxed } = await loadNodeKernelModules();
    const { ex } = instantiateKernels(relaxed!);
    const answer = ex.fused_dot_probe(127, 0xff);
    // the three lowerings fused-dot.ts names: vpdpbusd, vpdpbssd / sdot, pmaddubsw + pmaddwd (saturating)
    expect([FUSED_UNSIGNED, FUSED_SIGNED, EMULATED_SATURATED]).toContain(answer);
    expect((await loadNodeKernels('relaxed')).fusedDot).toBe(answer !== EMULATED_SATURATED);
    expect((await loadNodeKernels('relaxed', { fusedDot: true })).fusedDot).toBe(true);
    // the unsigned-dots path by default exactly where the dot-add reads bytes unsigned, refused where it does not
    expect((await loadNodeKernels('relaxed')).unsignedDots).toBe(answer === FUSED_UNSIGNED);
    expect((await loadNodeKernels('relaxed', { fusedDot: false })).unsignedDots).toBe(false);
    await expect(loadNodeKernels('relaxed', { fusedDot: false, unsignedDots: true })).rejects.toThrow(/unsignedDots needs fused dot-adds that read bytes unsigned/);
    expect(engineDotsUnsigned(() => FUSED_SIGNED)).toBe(false);
    expect(engineFusesDots(() => EMULATED_SATURATED)).toBe(false);
    expect(engineFusesDots(() => 0)).toBe(false); // an unknown lowering keeps the i16 path
    expect((await loadNodeKernels('simd')).fusedDot).toBeUndefined();
  });

  for (const dtype of ['q8_0', 'q4_0'] as const) {
    it(`${dtype} matmul matches dequantize + dot, and SIMD equals its scalar twin bit for bit`, async () => {
      const rows = 48, cols = 224, nTok = 3; // cols / 32 = 7 blocks: exercises the SIMD tail
      const w = rand(rows * cols, 1);
      const x = rand(nTok * cols, 2);
      const results: Float32Array[] = [];
      for (const [variant, opts] of executors) {
        const k = await loadNodeKernels(variant, opts);
        expect(k.name).toBe(`wasm-${variant}`);
        const { mat, deq } = putQuant(k, dtype, rows, cols, w);
        const xp = put(k, x);
        const yp = k.heap.alloc(nTok * rows * 4);
        const used = k.heap.usedBytes;
        k.matmul(mat, xp, yp, nTok);
        expect(k.heap.usedBytes).toBe(used); // scratch given back
        const y = k.heap.f32(yp, nTok * rows).slice();
        for (let t = 0; t < nTok; t++) {
          const ref = referenceMatvec(deq, rows, cols, x.subarray(t * cols, (t + 1) * cols));
          for (let r = 0; r < rows; r++) expect(Math.abs(y[t * rows + r] - ref[r])).toBeLessThan(1e-4 * (1 + Math.abs(ref[r])));
        }
        results.push(y);
      }
      for (const y of results.slice(1)) expect(y).toEqual(results[0]);
    });
  }

  it('ffnSwiglu equals down(silu(gate x) * up x) composed from matmuls', async () => {
    const hidden = 64, inter = 96, nTok = 2;
    for (const [variant, opts] of executors) {
      const k = await loadNodeKernels(variant, opts);
      const gate = putQuant(k, 'q4_0', inter, hidden, rand(inter * hidden, 3)).mat;
      const up = putQuant(k, 'q4_0', inter, hidden, rand(inter * hidden, 4)).mat;
      const down = putQuant(k, 'q8_0', hidden, inter, rand(hidden * inter, 5)).mat;
      const x = put(k, rand(nTok * hidden, 6));
      const y = k.heap.alloc(nTok * hidden * 4);
      k.ffnSwiglu(gate, up, down, x, y, nTok);
      const g = k.heap.alloc(nTok * inter * 4), u = k.heap.alloc(nTok * inter * 4), y2 = k.heap.alloc(nTok * hidden * 4);
      k.matmul(gate, x, g, nTok);
      k.matmul(up, x, u, nTok);
      const gv = k.heap.f32(g, nTok * inter), uv = k.heap.f32(u, nTok * inter);
      for (let i = 0; i < gv.length; i++) gv[i] = Math.fround(gv[i] / (1 + Math.exp(-gv[i]))) * uv[i];
      k.matmul(down, g, y2, nTok);
      const a = k.heap.f32(y, nTok * hidden), b = k.heap.f32(y2, nTok * hidden);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(2e-3 * (1 + Math.abs(b[i])));
    }
  });

  it('every other SIMD kernel equals its scalar twin bit for bit (f32/f16 matmul, FFN, attention)', async () => {
    const outs: Float32Array[][] = [];
    for (const [variant, opts] of executors) {
      const k = await loadNodeKernels(variant, opts);
      const got: Float32Array[] = [];
      for (const dtype of ['f32', 'f16'] as const) {
        const rows = 5, cols = 70, w = rand(rows * cols, 11);
        let data: number;
        if (dtype === 'f32') data = put(k, w);
        else {
          data = k.heap.alloc(rows * cols * 2);
          new Uint16Array(k.heap.memory.buffer, data, rows * cols).set(Array.from(w, (v) => f32ToF16(v)));
        }
        const x = put(k, rand(2 * cols, 12)), y = k.heap.alloc(2 * rows * 4);
        k.matmul({ dtype, rows, cols, data, scales: 0 }, x, y, 2);
        got.push(k.heap.f32(y, 2 * rows).slice());
      }
      const hidden = 96, inter = 160, nTok = 3;
      const gate = putQuant(k, 'q8_0', inter, hidden, rand(inter * hidden, 13)).mat;
      const up = putQuant(k, 'q8_0', inter, hidden, rand(inter * hidden, 14)).mat;
      const down = putQuant(k, 'q4_0', hidden, inter, rand(hidden * inter, 15)).mat;
      const x = put(k, rand(nTok * hidden, 16)), y = k.heap.alloc(nTok * hidden * 4);
      k.ffnSwiglu(gate, up, down, x, y, nTok);
      got.push(k.heap.f32(y, nTok * hidden).slice());
      const shape = { nHead: 4, nKvHead: 2, headDim: 36, scale: 1 / 6 };
      const q = put(k, rand(3 * 144, 17)), kc = put(k, rand(8 * 72, 18)), vc = put(k, rand(8 * 72, 19));
      const out = k.heap.alloc(3 * 144 * 4);
      k.attention(q, kc, vc, out, 3, 5, shape);
      got.push(k.heap.f32(out, 3 * 144).slice());
      outs.push(got);
    }
    for (const o of outs.slice(1)) o.forEach((a, i) => expect(a).toEqual(outs[0][i]));
  });

  it('attention over an f16 / q8_0 / q4_0 KV cache: every SIMD path equals the scalar twin bit for bit (GQA pairs, tails, odd groups), out aliasing q or not', async () => {
    // decode and prefill over caches whose position counts leave every remainder of 4; head dims of 2, 3 and 5
    // blocks (lanes of the per-block sums wrap at 4); a GQA group of 3 leaves one head unpaired
    const shapes = [{ nHead: 4, nKvHead: 2, headDim: 64 }, { nHead: 4, nKvHead: 2, headDim: 96 }, { nHead: 2, nKvHead: 1, headDim: 160 }, { nHead: 6, nKvHead: 2, headDim: 32 }];
    const calls: [number, number][] = [[1, 13], [1, 64], [1, 2], [3, 6]]; // [nTok, pos0]
    const outs: Float32Array[][] = [];
    for (const [variant, opts] of executors) {
      const k = await loadNodeKernels(variant, opts);
      const got: Float32Array[] = [];
      for (const dtype of ['f16', 'q8_0', 'q4_0'] as const) {
        for (const [si, s] of shapes.entries()) {
          const shape = { ...s, scale: 1 / Math.sqrt(s.headDim) }, kv = s.nKvHead * s.headDim, q = s.nHead * s.headDim, ctx = 70;
          const cache = (seed: number): Mat => { // ggml's layout, as the KV store writes it (putQuant would pack it as weights)
            if (dtype === 'f16') {
              const data = k.heap.alloc(ctx * kv * 2);
              new Uint16Array(k.heap.memory.buffer, data, ctx * kv).set(Array.from(rand(ctx * kv, seed), (v) => f32ToF16(v)));
              return { dtype, rows: ctx, cols: kv, data, scales: 0 };
            }
            const c = quantize(dtype, rand(ctx * kv, seed)), data = k.heap.alloc(c.qs.length);
            k.heap.u8(data, c.qs.length).set(c.qs);
            return { dtype, rows: ctx, cols: kv, data, scales: put(k, Float32Array.from(c.d, f16ToF32)) };
          };
          const kc = cache(30 + si), vc = cache(40 + si);
          for (const [nTok, pos0] of calls) {
            const x = put(k, rand(nTok * q, 50 + si + pos0)), out = k.heap.alloc(nTok * q * 4);
            k.attention(x, kc, vc, out, nTok, pos0, shape);
            got.push(k.heap.f32(out, nTok * q).slice());
            k.attention(x, kc, vc, x, nTok, pos0, shape); // out aliasing q: the engine's in-place call
            expect(k.heap.f32(x, nTok * q).slice(), `${dtype} shape ${si} nTok ${nTok}: in place`).toEqual(got[got.length - 1]);
          }
        }
      }
      outs.push(got);
    }
    for (const [i, o] of outs.slice(1).entries()) o.forEach((a, j) => expect(a, `executor ${i + 1}, case ${j}`).toEqual(outs[0][j]));
  });

  it('exp (silu, attention softmax): scalar and SIMD forms agree bit for bit and stay within 2 ulp of e^x', async () => {
    const m = await loadNodeKernelModules();
    const { ex, heap } = instantiateKernels(m.simd);
    // a sweep over the range softmax and silu use, the clamps' edges, zero, NaN and infinities
    const xs = Float32Array.from([...Array.from({ length: 4000 }, (_, i) => -90 + i * 0.04493), -87, -87.0001, 88.37626, 88.4, 0, -0, NaN, Infinity, -Infinity, 1e-8, -1e-8, 0, 0]);
    const p = heap.alloc(xs.length * 4);
    heap.f32(p, xs.length).set(xs);
    ex.exp_f32x4(p, xs.length);
    const simd = heap.f32(p, xs.length).slice();
    const ulp = (v: number) => { const b = new Float32Array([v]); const i = new Int32Array(b.buffer); i[0] += 1; return b[0] - v; };
    xs.forEach((x, i) => {
      const s = ex.exp_f32(x);
      expect(Object.is(s, simd[i]) || (Number.isNaN(s) && Number.isNaN(simd[i])), `x = ${x}: scalar ${s}, simd ${simd[i]}`).toBe(true);
      if (Number.isNaN(x)) return expect(s).toBeNaN();
      const want = Math.fround(Math.exp(x));
      if (x > 88.37626) return expect(s).toBe(Infinity); // the clamps (exp.ts): beyond them e^x is inf / below f32's normals
      if (x < -87) return expect(s).toBe(0);
      expect(Math.abs(s - want), `x = ${x}: ${s} vs ${want}`).toBeLessThanOrEqual(2 * ulp(want));
    });
  });

  it('f16 rows widen exactly: all 65,536 f16 values, in a row with inf / nan and in one without (getRow, which attention reads f16 K and V through)', async () => {
    // the definition, bit by bit: subnormals m * 2^-24, inf / nan keep their payload, zero keeps its sign
    const f32Bits = (h: number) => {
      const s = (h >> 15) << 31, e = (h >> 10) & 31, m = h & 0x3ff;
      if (e === 0) return (new Uint32Array(Float32Array.of(m * 2 ** -24).buffer)[0] | s) >>> 0;
      return (s | (e === 31 ? 0x7f800000 : (e + 112) << 23) | (m << 13)) >>> 0;
    };
    const all = Array.from({ length: 65536 }, (_, h) => h);
    const finite = all.filter((h) => ((h >> 10) & 31) !== 31); // 63,488: a multiple of the kernel's eight lanes
    for (const [variant, opts] of executors) {
      const k = await loadNodeKernels(variant, opts);
      for (const row of [finite, all]) {
        const data = k.heap.alloc(row.length * 2), out = k.heap.alloc(row.length * 4);
        new Uint16Array(k.heap.memory.buffer, data, row.length).set(row);
        k.getRow({ dtype: 'f16', rows: 1, cols: row.length, data, scales: 0 }, 0, out);
        const got = new Uint32Array(k.heap.memory.buffer, out, row.length);
        const wrong = row.filter((h, i) => got[i] !== f32Bits(h));
        expect(wrong.map((h) => h.toString(16)), `${variant} ${row.length} values`).toEqual([]);
      }
    }
  });

  it('attention of one query over one position returns that position\'s value', async () => {
    const k = await loadNodeKernels();
    const shape = { nHead: 4, nKvHead: 2, headDim: 8, scale: 1 / Math.sqrt(8) };
    const q = put(k, rand(32, 7)), kc = put(k, rand(16, 8)), vc = put(k, rand(16, 9));
    const out = k.heap.alloc(32 * 4);
    k.attention(q, kc, vc, out, 1, 0, shape);
    const o = k.heap.f32(out, 32), v = k.heap.f32(vc, 16);
    for (let h = 0; h < 4; h++) for (let d = 0; d < 8; d++) expect(o[h * 8 + d]).toBe(v[(h >> 1) * 8 + d]);
  });
});

// Conformance cases for the weight kernels: matmul (every dtype, mat-vec and mat-mat, odd shapes), getRow and the
// fused SwiGLU FFN (on f32 or on q8_0 activations), checked against ts-ref, a float64 definition and onnxruntime-web.
import { QK, dequantize, f16ToF32, f32ToF16, quantizeQ8_0, type DType } from '../../../src/format/quant';
import type { Kernels } from '../../../src/kernels/types';
import { Arena, expectClose, expectExact } from './harness';
import { effectiveInput, matmulF64, reroundAllowance, silu, storedWeights } from './naive';
import { ortMatmul } from './onnx-matmul';
import { Rng } from './rng';

/** One conformance case: `exec` runs it on an executor and returns its outputs; `verify` judges them. */
export interface Case {
  name: string;
  exec(k: Kernels, a: Arena): Float32Array[];
  verify(got: Float32Array[], ref: Float32Array[], label: string): void | Promise<void>;
}

// Tolerances, per output element, as a multiple of mag = sum_c |w_rc x_c| (the natural scale of rounding in
// a dot product: relative-to-|y| fails under cancellation even for a correctly rounded sum).
// Quantized: the integer block sums are exact; executors differ only in how the f32 block terms
// isum * (dw * dx) are rounded and in the order they are summed (<= nb ulps of mag, in practice ~1e-7).
// f16/f32: products exact (f16) or rounded once; f32 vs double accumulation over <= 1024 terms.
// The same bound holds against float64 and against onnxruntime's fp32 MatMul on the same operands.
export const MATMUL_TOL = 1e-5;
// FFN: MATMUL_TOL on the down matmul plus the hidden's error propagated through it. The hidden
// h = silu(gate x) * up x is known to HIDDEN_TOL * mag of gate/up (the worst matmul error observed, ts-ref's
// sequential f32 sum, is 7e-8 * mag: 5e-7 leaves a 7x margin), propagated to first order; where that error can move an element of a
// quantized (or f16) down's re-rounded input across a rounding boundary, one step of it is allowed.
export const FFN_TOL = 1e-5;
const HIDDEN_TOL = 5e-7;

const lazy = <T>(f: () => T): (() => T) => {
  let v: T | undefined;
  return () => (v ??= f());
};

function matmulCase(dtype: DType, rows: number, cols: number, nTok: number, seed: number): Case {
  const data = lazy(() => {
    const rng = new Rng(seed);
    return { w: rng.floats(rows * cols, 0.5), x: rng.floats(nTok * cols, 1) };
  });
  const operands = lazy(() => ({ w: storedWeights(dtype, data().w), x: effectiveInput(dtype, data().x, cols) }));
  const f64 = lazy(() => matmulF64(operands().w, operands().x, rows, cols, nTok));
  const ort = lazy(() => ortMatmul(operands().x, operands().w, nTok, cols, rows));
  return {
    name: `matmul ${dtype} W ${rows}x${cols} nTok=${nTok}`,
    exec(k, a) {
      const w = a.mat(dtype, rows, cols, data().w);
      const x = a.f32(data().x);
      const y = a.alloc(nTok * rows * 4);
      a.op(() => k.matmul(w, x, y, nTok));
      expectExact('matmul must not modify its input', a.read(x, nTok * cols), data().x);
      return [a.read(y, nTok * rows)];
    },
    async verify([got], [ref], label) {
      const { y, mag } = f64();
      const tol = (i: number) => MATMUL_TOL * mag[i];
      expectClose(`${label} vs ts-ref`, got, ref, tol);
      expectClose(`${label} vs float64 on stored operands`, got, y, tol);
      const outside = await ort();
      if (outside) expectClose(`${label} vs onnxruntime-web fp32 MatMul`, got, outside, tol);
    },
  };
}

// Identity W (q = 1 on the diagonal, scale 1) exposes the activation quants themselves: y = q(x) * d(x).
// Block 0 has amax 127, so d = 1 and x * (127/amax) = x: ties must round to even as ggml's x86 path does.
// Block 1 is all zeros: d = 0 and no NaN. Block 2 pins the reciprocal: with amax 0.6875, x * (127/amax) is
// 2.5000002 (-> 3, as ggml's x86 quantize_row_q8_0 gives) while x * (1/d) would be exactly 2.5 (-> 2).
// Token 1 is -x (rounding is symmetric).
function activationQuantCase(dtype: 'q8_0' | 'q4_0'): Case {
  const n = 3 * QK;
  const head = [127, 2.5, 3.5, -2.5, 0.5, 1.5, -126.6, 0.49, 64.5, 65.5, -0.5];
  const q = [127, 2, 4, -2, 0, 2, -127, 0, 64, 66, -0];
  const x = new Float32Array(2 * n);
  x.set(head);
  x.set([0.6875, 0.013533465564250946], 2 * QK);
  for (let i = 0; i < n; i++) x[n + i] = -x[i];
  const d2 = f16ToF32(f32ToF16(Math.fround(0.6875 / 127)));
  const want = new Float32Array(2 * n);
  want.set(q);
  want.set([127 * d2, 3 * d2], 2 * QK);
  for (let i = 0; i < n; i++) want[n + i] = -want[i] + 0;
  return {
    name: `matmul ${dtype} activation quantization (ties to even, zero block)`,
    exec(k, a) {
      let qs: Uint8Array;
      if (dtype === 'q8_0') {
        qs = new Uint8Array(n * n);
        for (let r = 0; r < n; r++) qs[r * n + r] = 1;
      } else {
        qs = new Uint8Array((n * n) / 2).fill(0x88); // nibble 8 = 0
        for (let r = 0; r < n; r++) {
          const j = r % QK; // column r sits in block r/32 of row r, at element j
          const byte = (r * n + (r - j)) / 2 + (j % 16);
          qs[byte] = j < 16 ? (qs[byte] & 0xf0) | 9 : (qs[byte] & 0x0f) | (9 << 4);
        }
      }
      const w = a.rawMat(dtype, n, n, qs, new Float32Array((n * n) / QK).fill(1));
      const xp = a.f32(x);
      const y = a.alloc(2 * n * 4);
      a.op(() => k.matmul(w, xp, y, 2));
      return [a.read(y, 2 * n)];
    },
    verify([got], [ref], label) {
      expectExact(`${label} vs hand-computed q8_0 quants`, got.map((v) => v + 0), want);
      expectExact(`${label} vs ts-ref`, got, ref);
    },
  };
}

function getRowCase(dtype: DType, rows: number, cols: number, row: number, seed: number): Case {
  const values = lazy(() => new Rng(seed).floats(rows * cols, 2));
  return {
    name: `getRow ${dtype} W ${rows}x${cols} row ${row}`,
    exec(k, a) {
      const w = a.mat(dtype, rows, cols, values());
      const out = a.alloc(cols * 4);
      a.op(() => k.getRow(w, row, out));
      return [a.read(out, cols)];
    },
    verify([got], [ref], label) {
      // dequantization is exact in f32 (int8 or nibble times an f16-valued scale), so no tolerance
      expectExact(`${label} vs ts-ref`, got, ref);
      expectExact(`${label} vs decodeTensor`, got, storedWeights(dtype, values()).subarray(row * cols, (row + 1) * cols));
    },
  };
}

function ffnCase(dts: [DType, DType, DType], H: number, I: number, nTok: number, seed: number): Case {
  const [dg, du, dd] = dts;
  const data = lazy(() => {
    const rng = new Rng(seed);
    return { g: rng.floats(I * H, 0.3), u: rng.floats(I * H, 0.3), d: rng.floats(H * I, 0.3), x: rng.floats(nTok * H, 1) };
  });
  return ffnCaseOf(`ffnSwiglu gate ${dg} up ${du} down ${dd} H=${H} I=${I} nTok=${nTok}`, dts, H, I, nTok, data);
}

// ffnSwigluQ8 on ggml's activation quantization of x (as the Worker sends it) must be ffnSwiglu on the dequantized x,
// bit for bit, on every executor. Token 0 also carries an all-zero block (d = 0), a block so small that its f16
// scale is 0 while its quants are not (amax 2e-6), and one whose scale is an f16 subnormal (amax 1e-4).
function ffnQ8Case(dts: [DType, DType, DType], H: number, I: number, nTok: number, seed: number): Case {
  const [dg, du, dd] = dts;
  const data = lazy(() => {
    const rng = new Rng(seed);
    const w = { g: rng.floats(I * H, 0.3), u: rng.floats(I * H, 0.3), d: rng.floats(H * I, 0.3) };
    const x = rng.floats(nTok * H, 1);
    const small = [0, 2e-6, 1e-4];
    for (let b = 0; b < Math.min(small.length, H / QK - 1); b++) {
      for (let j = 0; j < QK; j++) x[(b + 1) * QK + j] = small[b] * Math.sin(j + 1);
    }
    const q = quantizeQ8_0(x, 'activation');
    return { ...w, x: dequantize(q), xq: q.qs, xd: q.d };
  });
  const inner = ffnCaseOf(`ffnSwigluQ8 gate ${dg} up ${du} down ${dd} H=${H} I=${I} nTok=${nTok}`, dts, H, I, nTok, data);
  return {
    name: inner.name,
    exec(k, a) {
      const { g, u, d, x, xq, xd } = data();
      const gate = a.mat(dg, I, H, g);
      const up = a.mat(du, I, H, u);
      const down = a.mat(dd, H, I, d);
      const qp = a.alloc(xq.length);
      k.heap.u8(qp, xq.length).set(xq);
      const dp = a.alloc(xd.length * 2);
      k.heap.u8(dp, xd.length * 2).set(new Uint8Array(xd.buffer, xd.byteOffset, xd.byteLength));
      const xp = a.f32(x);
      const yq = a.alloc(nTok * H * 4);
      const yf = a.alloc(nTok * H * 4);
      a.op(() => k.ffnSwigluQ8(gate, up, down, qp, dp, yq, nTok));
      a.op(() => k.ffnSwiglu(gate, up, down, xp, yf, nTok));
      expectExact('ffnSwigluQ8 must not modify its input', a.readBytes(qp, xq.length), xq);
      return [a.read(yq, nTok * H), a.read(yf, nTok * H)];
    },
    async verify([q8, f32], [ref], label) {
      const bits = (v: Float32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);
      expectExact(`${label} vs ffnSwiglu on the dequantized input, bit for bit`, bits(q8), bits(f32));
      await inner.verify([q8], [ref], label);
    },
  };
}

function ffnCaseOf(name: string, [dg, du, dd]: [DType, DType, DType], H: number, I: number, nTok: number,
  data: () => { g: Float32Array; u: Float32Array; d: Float32Array; x: Float32Array }): Case {
  const f64 = lazy(() => {
    const { g: gv, u: uv, d: dv, x } = data();
    const G = matmulF64(storedWeights(dg, gv), effectiveInput(dg, x, H), I, H, nTok);
    const U = matmulF64(storedWeights(du, uv), effectiveInput(du, x, H), I, H, nTok);
    const h = new Float32Array(nTok * I);
    const tolH = new Float32Array(nTok * I);
    for (let i = 0; i < h.length; i++) {
      const g = G.y[i];
      const s = 1 / (1 + Math.exp(-g));
      h[i] = silu(g) * U.y[i];
      tolH[i] = HIDDEN_TOL * (G.mag[i] * Math.abs(s * (1 + g * (1 - s)) * U.y[i]) + U.mag[i] * Math.abs(silu(g)));
    }
    const wd = storedWeights(dd, dv);
    const absWd = wd.map(Math.abs);
    const Y = matmulF64(wd, effectiveInput(dd, h, I), H, I, nTok);
    const prop = matmulF64(absWd, tolH, H, I, nTok).y;
    const reround = matmulF64(absWd, Float32Array.from(reroundAllowance(dd, h, tolH, I, nTok)), H, I, nTok).y;
    const tol = Y.mag.map((m, i) => FFN_TOL * m + prop[i] + reround[i]);
    return { y: Y.y, tol };
  });
  return {
    name,
    exec(k, a) {
      const { g, u, d, x } = data();
      const gate = a.mat(dg, I, H, g);
      const up = a.mat(du, I, H, u);
      const down = a.mat(dd, H, I, d);
      const xp = a.f32(x);
      const y = a.alloc(nTok * H * 4);
      a.op(() => k.ffnSwiglu(gate, up, down, xp, y, nTok));
      return [a.read(y, nTok * H)];
    },
    verify([got], [ref], label) {
      const { y, tol } = f64();
      expectClose(`${label} vs ts-ref`, got, ref, (i) => tol[i]);
      expectClose(`${label} vs float64 (hidden re-quantized)`, got, y, (i) => tol[i]);
    },
  };
}

export function weightCases(): Case[] {
  const cases: Case[] = [];
  let seed = 100;
  // rows not a multiple of 4 or 16 (37, 3, 1, 13), 260 = 16*16 + 4, cols with an odd number of blocks (96, 160)
  const shapes: [number, number][] = [[64, 64], [32, 64], [260, 64], [37, 96], [3, 160], [1, 32], [1024, 512], [512, 1024]];
  for (const dtype of ['q8_0', 'q4_0', 'f16', 'f32'] as const) {
    for (const [rows, cols] of shapes) for (const nTok of [1, 7]) cases.push(matmulCase(dtype, rows, cols, nTok, seed++));
    cases.push(matmulCase(dtype, 48, 128, 16, seed++)); // a full 16-token tile
    cases.push(matmulCase(dtype, 13, 288, 3, seed++));
  }
  // float formats need no 32-blocks: a tensor whose rows cannot be quantized stays f16/f32
  for (const dtype of ['f16', 'f32'] as const) for (const nTok of [1, 5]) cases.push(matmulCase(dtype, 13, 70, nTok, seed++));
  cases.push(activationQuantCase('q8_0'), activationQuantCase('q4_0'));
  for (const dtype of ['q8_0', 'q4_0', 'f16', 'f32'] as const) {
    for (const row of [0, 17, 36]) cases.push(getRowCase(dtype, 37, 96, row, seed++));
    cases.push(getRowCase(dtype, 260, 512, 259, seed++));
  }
  const ffnDtypes: [DType, DType, DType][] = [
    ['q4_0', 'q4_0', 'q4_0'], ['q8_0', 'q8_0', 'q8_0'], ['f16', 'f16', 'f16'], ['f32', 'f32', 'f32'], ['q4_0', 'q4_0', 'q8_0'],
  ];
  for (const dts of ffnDtypes) {
    cases.push(ffnCase(dts, 64, 96, 1, seed++));
    cases.push(ffnCase(dts, 128, 352, 7, seed++));
  }
  cases.push(ffnCase(['q4_0', 'q4_0', 'q4_0'], 512, 1024, 1, seed++));
  cases.push(ffnCase(['q4_0', 'q4_0', 'q4_0'], 256, 160, 9, seed++)); // prefill: four-token passes, one left over, a partial block group
  cases.push(ffnCase(['q8_0', 'q8_0', 'q8_0'], 512, 1024, 4, seed++));
  // q8_0 activations as they arrive: quantized gate/up (the no-requantize path), float and mixed ones (dequantized)
  for (const dts of [...ffnDtypes, ['q8_0', 'q4_0', 'q8_0']] as [DType, DType, DType][]) {
    cases.push(ffnQ8Case(dts, 64, 96, 1, seed++));
    cases.push(ffnQ8Case(dts, 160, 352, 7, seed++));
  }
  cases.push(ffnQ8Case(['q4_0', 'q4_0', 'q4_0'], 512, 1024, 4, seed++));
  cases.push(ffnQ8Case(['q4_0', 'q4_0', 'q4_0'], 256, 160, 9, seed++));
  // a prefill chunk of more than 64 tokens through qwen3-shaped projections (q: nHead * headDim 1024 != hidden 512)
  for (const dtype of ['q8_0', 'q4_0', 'f16', 'f32'] as const) {
    cases.push(matmulCase(dtype, 1024, 512, 70, seed++));
    cases.push(matmulCase(dtype, 512, 1024, 65, seed++));
  }
  return cases;
}

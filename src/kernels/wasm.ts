// The WebAssembly executor: instantiates a kernels-*.wasm module over a JS-owned WebAssembly.Memory and exposes
// it as `Kernels` (variant scalar = the *_scalar twins; simd / relaxed = the SIMD exports of the module given).
import { QK, isQuantized, quantBytes, memoryBytes, type DType } from '../format/quant';
import { Heap } from './heap';
import { ffnOnDequantized } from './q8-input';
import { asKvMat, checkKvHeads } from './kv-rows';
import { engineDotsUnsigned, engineFusesDots } from './fused-dot';
import type { AttentionShape, Kernels, KvRows, Mat, Ptr, RopeLayout } from './types';

export type WasmVariant = 'scalar' | 'simd' | 'relaxed';

export interface WasmKernelOptions {
  initialPages?: number; // default 16 (1 MiB)
  maximumPages?: number; // default 65536 (4 GiB); workerd callers pass less
  /** relaxed variant: fused dot-adds (true) or the i16 dots (false); default what the engine runs fast (fused-dot.ts) */
  fusedDot?: boolean;
  /**
   * relaxed variant on fused dot-adds: bytes read unsigned (q4_0 high nibbles multiplied where they lie, q8_0
   * weights stored as w + 128 when packed; fused-dot.ts, engineDotsUnsigned); default where the engine's dot-add is exact so.
   * True where it is not is refused (the results would be wrong); false keeps the signed paths (the conformance
   * suite runs both).
   */
  unsignedDots?: boolean;
}

type MatmulFn = (w: Ptr, rows: number, cols: number, x: Ptr, y: Ptr, nTok: number, scratch: Ptr) => void;
type QMatmulFn = (wq: Ptr, ws: Ptr, rows: number, cols: number, x: Ptr, y: Ptr, nTok: number, scratch: Ptr) => void;
type FfnFn = (dtGU: number, gq: Ptr, gs: Ptr, uq: Ptr, us: Ptr, dtD: number, dq: Ptr, ds: Ptr,
  hidden: number, inter: number, x: Ptr, y: Ptr, nTok: number, scratch: Ptr) => void;
type FfnQ8Fn = (dtGU: number, gq: Ptr, gs: Ptr, uq: Ptr, us: Ptr, dtD: number, dq: Ptr, ds: Ptr,
  hidden: number, inter: number, xq: Ptr, xd: Ptr, y: Ptr, nTok: number, scratch: Ptr) => void;
type AttentionFn = (q: Ptr, k: Ptr, v: Ptr, out: Ptr, nTok: number, pos0: number, nHead: number, nKvHead: number,
  headDim: number, scale: number, scratch: Ptr) => void;
type AttentionKvFn = (q: Ptr, dtK: number, k: Ptr, ks: Ptr, dtV: number, v: Ptr, vs: Ptr, out: Ptr, nTok: number, pos0: number,
  nHead: number, nKvHead: number, headDim: number, scale: number, scratch: Ptr) => void;

/** The module's exports (see wasm/assembly/index.ts). */
export interface WasmKernelExports {
  QK: WebAssembly.Global;
  Q8_0_BLOCK_QUANT_BYTES: WebAssembly.Global;
  Q4_0_BLOCK_QUANT_BYTES: WebAssembly.Global;
  SCALE_BYTES: WebAssembly.Global;
  IS_RELAXED: WebAssembly.Global;
  DT_F32: WebAssembly.Global;
  DT_F16: WebAssembly.Global;
  DT_Q8_0: WebAssembly.Global;
  DT_Q4_0: WebAssembly.Global;
  DT_Q4_0X4: WebAssembly.Global;
  DT_Q8_0X4: WebAssembly.Global;
  heap_base(): number;
  set_fused_dot(on: number): void;
  fused_dot_probe(a: number, b: number): number;
  matmul_scratch(dt: number, cols: number, nTok: number): number;
  ffn_scratch(dtGU: number, dtD: number, hidden: number, inter: number, nTok: number): number;
  attention_scratch(nCtx: number, nHead: number): number;
  attention_kv_scratch(nCtx: number, headDim: number, group: number, nTok: number): number;
  matmul_f32: MatmulFn; matmul_f32_scalar: MatmulFn;
  matmul_f16: MatmulFn; matmul_f16_scalar: MatmulFn;
  matmul_q8_0: QMatmulFn; matmul_q8_0_scalar: QMatmulFn;
  matmul_q4_0: QMatmulFn; matmul_q4_0_scalar: QMatmulFn;
  matmul_q4_0x4: QMatmulFn; matmul_q4_0x4_scalar: QMatmulFn;
  repack_q4_0x4(wq: Ptr, ws: Ptr, rows: number, cols: number, scratch: Ptr): void;
  repack_q4_0x4_scratch(cols: number): number;
  matmul_q8_0x4: QMatmulFn; matmul_q8_0x4_scalar: QMatmulFn;
  repack_q8_0x4(wq: Ptr, rows: number, cols: number): void;
  ffn_swiglu: FfnFn; ffn_swiglu_scalar: FfnFn;
  ffn_swiglu_q8: FfnQ8Fn; ffn_swiglu_q8_scalar: FfnQ8Fn;
  attention: AttentionFn; attention_scalar: AttentionFn;
  attention_kv: AttentionKvFn; attention_kv_scalar: AttentionKvFn;
  store_rows(dt: number, x: Ptr, data: Ptr, scales: Ptr, cols: number, row0: number, nRows: number): void;
  get_row(dt: number, data: Ptr, scales: Ptr, rows: number, cols: number, row: number, out: Ptr): void;
  rms_norm(x: Ptr, w: Ptr, out: Ptr, n: number, nTok: number, eps: number): void;
  rope(x: Ptr, nTok: number, nHeads: number, headDim: number, rotDims: number, pos0: number, base: number, layout: number): void;
  softmax(x: Ptr, n: number, rows: number): void;
  top_k(x: Ptr, n: number, k: number, outIdx: Ptr, outVal: Ptr): void;
  add_scaled(a: Ptr, b: Ptr, s: number, n: number): void;
  stream_read(ptr: Ptr, bytes: number): number;
  exp_f32(x: number): number;
  exp_f32x4(x: Ptr, n: number): void;
}

export const DTYPE_CODE: Readonly<Record<DType, number>> = { f32: 0, f16: 1, q8_0: 2, q4_0: 3 };
/** The kernels' codes for q4_0 and q8_0 weights packed by packWeights (wasm/assembly/dot-q4x4.ts, dot-q8x4.ts). */
export const PACKED_Q4_0_CODE = 4;
export const PACKED_Q8_0_CODE = 5;

/** The dtype code the kernels switch on for a matrix: its dtype's, or the packed layout's. */
const codeOf = (m: Mat): number => (m.packed ? (m.dtype === 'q8_0' ? PACKED_Q8_0_CODE : PACKED_Q4_0_CODE) : DTYPE_CODE[m.dtype]);

/** Instantiates `module` (synchronously: workerd forbids compiling at run time) with its own memory and heap. */
export function instantiateKernels(module: WebAssembly.Module, opts: WasmKernelOptions = {}): { ex: WasmKernelExports; heap: Heap } {
  const memory = new WebAssembly.Memory({ initial: opts.initialPages ?? 16, maximum: opts.maximumPages ?? 65536 });
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const ex = instance.exports as unknown as WasmKernelExports;
  checkConstants(ex);
  const base = ex.heap_base();
  if (base > memory.buffer.byteLength) throw new Error(`wasm kernels: static data ends at ${base}, past the initial memory`);
  return { ex, heap: new Heap(memory, base) };
}

// The module's block layout must be quant.ts's and its dtype codes DTYPE_CODE's: a mismatch would silently
// corrupt every quantized matmul (or run one dtype's kernel over another's bytes).
type ModuleConstants = Pick<WasmKernelExports, 'QK' | 'Q8_0_BLOCK_QUANT_BYTES' | 'Q4_0_BLOCK_QUANT_BYTES' | 'SCALE_BYTES' |
  'DT_F32' | 'DT_F16' | 'DT_Q8_0' | 'DT_Q4_0' | 'DT_Q4_0X4' | 'DT_Q8_0X4'>;

export function checkConstants(ex: ModuleConstants): void {
  const quant = 'src/format/quant.ts';
  const codes = 'DTYPE_CODE in src/kernels/wasm.ts';
  const want: [string, WebAssembly.Global | undefined, number, string][] = [
    ['QK', ex.QK, QK, quant],
    ['Q8_0_BLOCK_QUANT_BYTES', ex.Q8_0_BLOCK_QUANT_BYTES, quantBytes('q8_0', QK), quant],
    ['Q4_0_BLOCK_QUANT_BYTES', ex.Q4_0_BLOCK_QUANT_BYTES, quantBytes('q4_0', QK), quant],
    ['SCALE_BYTES', ex.SCALE_BYTES, memoryBytes('q8_0', QK) - quantBytes('q8_0', QK), quant],
    ['DT_F32', ex.DT_F32, DTYPE_CODE.f32, codes],
    ['DT_F16', ex.DT_F16, DTYPE_CODE.f16, codes],
    ['DT_Q8_0', ex.DT_Q8_0, DTYPE_CODE.q8_0, codes],
    ['DT_Q4_0', ex.DT_Q4_0, DTYPE_CODE.q4_0, codes],
    ['DT_Q4_0X4', ex.DT_Q4_0X4, PACKED_Q4_0_CODE, 'PACKED_Q4_0_CODE in src/kernels/wasm.ts'],
    ['DT_Q8_0X4', ex.DT_Q8_0X4, PACKED_Q8_0_CODE, 'PACKED_Q8_0_CODE in src/kernels/wasm.ts'],
  ];
  for (const [name, global, expected, where] of want) {
    const got = global?.value; // absent: a module built before the export existed
    if (got !== expected) throw new Error(`wasm kernels: ${name} is ${got}, ${where} says ${expected}`);
  }
}

export function createWasmKernels(module: WebAssembly.Module, variant: WasmVariant, opts: WasmKernelOptions = {}): Kernels {
  const { ex, heap } = instantiateKernels(module, opts);
  if (variant === 'relaxed' && ex.IS_RELAXED.value !== 1) throw new Error('wasm kernels: variant relaxed needs kernels-relaxed.wasm');
  if (variant === 'simd' && ex.IS_RELAXED.value !== 0) throw new Error('wasm kernels: variant simd needs kernels-simd.wasm');
  const scalar = variant === 'scalar';
  // a module built before the fused path (an A/B of old builds in wasm/dev) has only the i16 one
  const hasFused = typeof ex.set_fused_dot === 'function';
  if (opts.fusedDot && !hasFused) throw new Error('wasm kernels: this module predates fused dot-adds (no set_fused_dot export)');
  const fusedDot = variant === 'relaxed' && hasFused && (opts.fusedDot ?? engineFusesDots(ex.fused_dot_probe));
  const unsignedOk = fusedDot && engineDotsUnsigned(ex.fused_dot_probe);
  if (opts.unsignedDots && !unsignedOk) throw new Error(`wasm kernels: unsignedDots needs fused dot-adds that read bytes unsigned; this engine's probe answers ${ex.fused_dot_probe(127, 0xff)} (fused-dot.ts)`);
  const unsignedDots = unsignedOk && (opts.unsignedDots ?? true);
  if (hasFused) ex.set_fused_dot(unsignedDots ? 2 : fusedDot ? 1 : 0);
  const pick = <K extends keyof WasmKernelExports>(simdName: K, scalarName: K): WasmKernelExports[K] => ex[scalar ? scalarName : simdName];
  const mm = {
    f32: pick('matmul_f32', 'matmul_f32_scalar'),
    f16: pick('matmul_f16', 'matmul_f16_scalar'),
    q8_0: pick('matmul_q8_0', 'matmul_q8_0_scalar'),
    q4_0: pick('matmul_q4_0', 'matmul_q4_0_scalar'),
  };
  const mmPacked = { q4_0: pick('matmul_q4_0x4', 'matmul_q4_0x4_scalar'), q8_0: pick('matmul_q8_0x4', 'matmul_q8_0x4_scalar') };
  // the relaxed build's SIMD kernels (and the scalar twins) read q4_0 and q8_0 weights packed four blocks at a time;
  // the plain SIMD build has no packed kernels and keeps ggml's layout
  const packs = variant !== 'simd';
  const ffn = pick('ffn_swiglu', 'ffn_swiglu_scalar');
  const ffnQ8 = pick('ffn_swiglu_q8', 'ffn_swiglu_q8_scalar');
  const attn = pick('attention', 'attention_scalar');
  const attnKv = pick('attention_kv', 'attention_kv_scalar');

  // Scratch is taken from the heap for one call and given back: the heap is shared by concurrent generations,
  // so a kernel must not keep memory it no longer needs (an alloc/release pair costs well under a microsecond).
  const withScratch = (bytes: number, run: (scratch: Ptr) => void): void => {
    const s = heap.alloc(bytes);
    try { run(s); } finally { heap.release(s); }
  };

  const matmul = (w: Mat, x: Ptr, y: Ptr, nTok: number): void => {
    withScratch(ex.matmul_scratch(codeOf(w), w.cols, nTok), (s) => {
      if (w.dtype === 'f32' || w.dtype === 'f16') mm[w.dtype](w.data, w.rows, w.cols, x, y, nTok, s);
      else (w.packed ? mmPacked[w.dtype as 'q4_0' | 'q8_0'] : mm[w.dtype])(w.data, w.scales, w.rows, w.cols, x, y, nTok, s);
    });
  };

  const kernels: Kernels = {
    name: `wasm-${variant}`,
    ...(variant === 'relaxed' ? { fusedDot, unsignedDots } : {}),
    heap,
    matmul,
    packWeights(m: Mat): void {
      if (!packs || (m.dtype !== 'q4_0' && m.dtype !== 'q8_0') || m.packed) return;
      if (m.dtype === 'q8_0') ex.repack_q8_0x4(m.data, m.rows, m.cols);
      else withScratch(ex.repack_q4_0x4_scratch(m.cols), (s) => ex.repack_q4_0x4(m.data, m.scales, m.rows, m.cols, s));
      m.packed = true;
    },
    getRow(w: Mat, row: number, out: Ptr): void {
      ex.get_row(codeOf(w), w.data, w.scales, w.rows, w.cols, row, out);
    },
    ffnSwiglu(gate: Mat, up: Mat, down: Mat, x: Ptr, y: Ptr, nTok: number): void {
      checkFfnShapes(gate, up, down);
      if (codeOf(gate) !== codeOf(up)) return composedFfn(gate, up, down, x, y, nTok);
      const dtGU = codeOf(gate);
      const dtD = codeOf(down);
      withScratch(ex.ffn_scratch(dtGU, dtD, gate.cols, gate.rows, nTok), (s) =>
        ffn(dtGU, gate.data, gate.scales, up.data, up.scales, dtD, down.data, down.scales, gate.cols, gate.rows, x, y, nTok, s));
    },
    ffnSwigluQ8(gate: Mat, up: Mat, down: Mat, xq: Ptr, xd: Ptr, y: Ptr, nTok: number): void {
      checkFfnShapes(gate, up, down);
      if (!isQuantized(gate.dtype) || codeOf(gate) !== codeOf(up)) return ffnOnDequantized(kernels, gate, up, down, xq, xd, y, nTok);
      const dtGU = codeOf(gate);
      const dtD = codeOf(down);
      withScratch(ex.ffn_scratch(dtGU, dtD, gate.cols, gate.rows, nTok), (s) =>
        ffnQ8(dtGU, gate.data, gate.scales, up.data, up.scales, dtD, down.data, down.scales, gate.cols, gate.rows, xq, xd, y, nTok, s));
    },
    rmsNorm(x: Ptr, w: Ptr, out: Ptr, n: number, nTok: number, eps: number): void {
      ex.rms_norm(x, w, out, n, nTok, eps);
    },
    rope(x: Ptr, nTok: number, nHeads: number, headDim: number, rotDims: number, pos0: number, base: number, layout: RopeLayout): void {
      if (rotDims > headDim || rotDims % 2 !== 0) throw new RangeError(`rope: rotDims ${rotDims} must be even and <= headDim ${headDim}`);
      ex.rope(x, nTok, nHeads, headDim, rotDims, pos0, base, layout === 'neox' ? 0 : 1);
    },
    attention(q: Ptr, kCache: KvRows, vCache: KvRows, out: Ptr, nTok: number, pos0: number, shape: AttentionShape): void {
      if (shape.nHead % shape.nKvHead !== 0) throw new RangeError(`attention: nHead ${shape.nHead} is not a multiple of nKvHead ${shape.nKvHead}`);
      const nPos = pos0 + nTok;
      const kvDim = shape.nKvHead * shape.headDim;
      const k = asKvMat(kCache, nPos, kvDim);
      const v = asKvMat(vCache, nPos, kvDim);
      checkKvHeads(k, v, shape.headDim);
      if (k.dtype === 'f32' && v.dtype === 'f32') {
        return withScratch(ex.attention_scratch(nPos, shape.nHead), (s) =>
          attn(q, k.data, v.data, out, nTok, pos0, shape.nHead, shape.nKvHead, shape.headDim, shape.scale, s));
      }
      withScratch(ex.attention_kv_scratch(nPos, shape.headDim, shape.nHead / shape.nKvHead, nTok), (s) =>
        attnKv(q, DTYPE_CODE[k.dtype], k.data, k.scales, DTYPE_CODE[v.dtype], v.data, v.scales, out, nTok, pos0,
          shape.nHead, shape.nKvHead, shape.headDim, shape.scale, s));
    },
    storeRows(x: Ptr, dst: Mat, row0: number, nRows: number): void {
      if (row0 < 0 || row0 + nRows > dst.rows) throw new RangeError(`storeRows: rows ${row0}..${row0 + nRows - 1} outside 0..${dst.rows - 1}`);
      if (isQuantized(dst.dtype) && dst.cols % QK !== 0) throw new RangeError(`storeRows: ${dst.dtype} rows need a multiple of ${QK} columns, got ${dst.cols}`);
      ex.store_rows(DTYPE_CODE[dst.dtype], x, dst.data, dst.scales, dst.cols, row0, nRows);
    },
    softmax(x: Ptr, n: number, rows: number): void {
      ex.softmax(x, n, rows);
    },
    topK(x: Ptr, n: number, k: number, outIdx: Ptr, outVal: Ptr): void {
      if (k > n) throw new RangeError(`topK: k ${k} > n ${n}`);
      ex.top_k(x, n, k, outIdx, outVal);
    },
    addScaled(a: Ptr, b: Ptr, s: number, n: number): void {
      ex.add_scaled(a, b, s, n);
    },
  };

  return kernels;

  // gate and up of different dtypes (never produced by our converter): matmuls composed in JS, same values.
  function composedFfn(gate: Mat, up: Mat, down: Mat, x: Ptr, y: Ptr, nTok: number): void {
    const n = gate.rows * nTok;
    const g = heap.alloc(n * 4);
    const u = heap.alloc(n * 4);
    try {
      matmul(gate, x, g, nTok);
      matmul(up, x, u, nTok);
      const gv = heap.f32(g, n);
      const uv = heap.f32(u, n);
      for (let i = 0; i < n; i++) gv[i] = Math.fround(Math.fround(gv[i] / Math.fround(1 + Math.fround(Math.exp(-gv[i])))) * uv[i]);
      matmul(down, g, y, nTok);
    } finally {
      heap.release(u);
      heap.release(g);
    }
  }
}

function checkFfnShapes(gate: Mat, up: Mat, down: Mat): void {
  const hidden = gate.cols;
  const inter = gate.rows;
  if (up.rows !== inter || up.cols !== hidden || down.rows !== hidden || down.cols !== inter) {
    throw new RangeError(`ffnSwiglu: shapes gate ${gate.rows}x${gate.cols}, up ${up.rows}x${up.cols}, down ${down.rows}x${down.cols} do not fit`);
  }
}

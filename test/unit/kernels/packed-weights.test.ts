// Packed q4_0 and q8_0 weights (Kernels.packWeights, wasm/assembly/dot-q4x4.ts, dot-q8x4.ts): an executor that packs
// gives results bit for bit equal to the same executor on ggml's layout, for mat-vec, every token count of mat-mat,
// the FFN on f32 and on q8_0 activations and row lookups, with q4_0 rows interleaved in quads or not (cols % 128) and rows left
// over (rows % 4); a packed matrix is not packed again; an executor that does not pack leaves the bytes alone.
import { describe, expect, it } from 'vitest';
import { f16ToF32, quantize, quantizeQ8_0 } from '../../../src/format/quant';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import type { WasmKernelOptions, WasmVariant } from '../../../src/kernels/wasm';
import type { Kernels, Mat } from '../../../src/kernels/types';
import { relaxedDotPaths } from './relaxed-paths';
import { Rng } from './rng';

function place(k: Kernels, rows: number, cols: number, values: Float32Array, dtype: 'q4_0' | 'q8_0'): Mat {
  const q = quantize(dtype, values);
  const data = k.heap.alloc(q.qs.length + q.d.length * 4);
  k.heap.u8(data, q.qs.length).set(q.qs);
  k.heap.f32(data + q.qs.length, q.d.length).set(Float32Array.from(q.d, f16ToF32));
  return { dtype, rows, cols, data, scales: data + q.qs.length };
}

function put(k: Kernels, v: ArrayBufferView): number {
  const p = k.heap.alloc(v.byteLength);
  k.heap.u8(p, v.byteLength).set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  return p;
}

const read = (k: Kernels, p: number, n: number) => k.heap.f32(p, n).slice();

/** Every weight kernel on a quantized matrix pair (gate, up: I x H; down: H x I) and one input, as f32 arrays. */
function runAll(k: Kernels, gate: Mat, up: Mat, down: Mat, x: Float32Array, nTok: number): Float32Array[] {
  const [H, I] = [gate.cols, gate.rows];
  const xp = put(k, x);
  const out: Float32Array[] = [];
  const y = k.heap.alloc(nTok * Math.max(H, I) * 4);
  k.matmul(gate, xp, y, nTok);
  out.push(read(k, y, nTok * I));
  k.ffnSwiglu(gate, up, down, xp, y, nTok);
  out.push(read(k, y, nTok * H));
  const q = quantizeQ8_0(x);
  const xq = put(k, q.qs), xd = put(k, Uint16Array.from(q.d));
  k.ffnSwigluQ8(gate, up, down, xq, xd, y, nTok);
  out.push(read(k, y, nTok * H));
  for (const row of [0, I - 1]) {
    k.getRow(gate, row, y);
    out.push(read(k, y, H));
  }
  return out;
}

// the relaxed executor on each integer-dot path this engine can run (relaxed-paths.ts)
const packing: [string, WasmVariant, WasmKernelOptions?][] = [['wasm-scalar', 'scalar'],
  ...(await relaxedDotPaths()).map(([suffix, opts]): [string, WasmVariant, WasmKernelOptions] => [`wasm-relaxed${suffix}`, 'relaxed', opts])];

for (const dtype of ['q4_0', 'q8_0'] as const) describe(`packed ${dtype} weights`, () => {
  const qBytes = (n: number) => (dtype === 'q4_0' ? n / 2 : n);
  for (const [name, variant, opts] of packing) {
    // H x I: whole block groups (1024 x 512, granite's expert: every matrix in quads), a partial last group (224 = 7
    // blocks: no quads), and gate/up in quads with down not (256 x 96)
    for (const [H, I] of [[1024, 512], [224, 96], [256, 96]] as const) {
      it(`${name}: ${H}x${I} packed equals ggml's layout bit for bit at 1, 4, 5 and 9 tokens`, async () => {
        const rng = new Rng(H + I);
        const g = rng.floats(I * H, 0.5), u = rng.floats(I * H, 0.5), d = rng.floats(H * I, 0.5);
        const k = await loadNodeKernels(variant, opts);
        const flat = [place(k, I, H, g, dtype), place(k, I, H, u, dtype), place(k, H, I, d, dtype)];
        const packed = [place(k, I, H, g, dtype), place(k, I, H, u, dtype), place(k, H, I, d, dtype)];
        for (const m of packed) k.packWeights!(m);
        expect(packed.every((m) => m.packed)).toBe(true);
        expect(k.heap.u8(packed[0].data, qBytes(I * H))).not.toEqual(k.heap.u8(flat[0].data, qBytes(I * H))); // really rearranged
        for (const nTok of [1, 4, 5, 9]) {
          const x = rng.floats(nTok * H, 1);
          const want = runAll(k, flat[0], flat[1], flat[2], x, nTok);
          const got = runAll(k, packed[0], packed[1], packed[2], x, nTok);
          got.forEach((a, i) => expect(a, `output ${i} at ${nTok} tokens`).toEqual(want[i]));
        }
      });
    }

    // rows % 4 left over: 4 * 2 rows in quads and 2 apart (cols 256), or no quads at all (cols 224)
    for (const [rows, cols] of [[10, 256], [10, 224], [3, 256]] as const) {
      it(`${name}: a ${rows}x${cols} matrix packed equals ggml's layout in matmul at 1, 4, 5 and 9 tokens and in every row lookup`, async () => {
        const rng = new Rng(rows * cols);
        const v = rng.floats(rows * cols, 0.5);
        const k = await loadNodeKernels(variant, opts);
        const flat = place(k, rows, cols, v, dtype), packed = place(k, rows, cols, v, dtype);
        k.packWeights!(packed);
        const y = k.heap.alloc(9 * rows * 4);
        for (const nTok of [1, 4, 5, 9]) {
          const x = put(k, rng.floats(nTok * cols, 1));
          k.matmul(flat, x, y, nTok);
          const want = read(k, y, nTok * rows);
          k.matmul(packed, x, y, nTok);
          expect(read(k, y, nTok * rows), `${nTok} tokens`).toEqual(want);
        }
        for (let row = 0; row < rows; row++) {
          k.getRow(flat, row, y);
          const want = read(k, y, cols);
          k.getRow(packed, row, y);
          expect(read(k, y, cols), `row ${row}`).toEqual(want);
        }
      });
    }

    it(`${name}: packing rearranges the bytes (q4_0 its scales too; q8_0 on unsigned dots stores w + 128); a packed matrix is not packed again`, async () => {
      const k = await loadNodeKernels(variant, opts);
      const m = place(k, 8, 256, new Rng(5).floats(8 * 256, 1), dtype);
      const bytes = qBytes(8 * 256) + 8 * 8 * 4; // quants, then the f32 scales right after them (place)
      const before = k.heap.u8(m.data, bytes).slice();
      k.packWeights!(m);
      const once = k.heap.u8(m.data, bytes).slice();
      const scales = k.heap.u8(m.scales, 8 * 8 * 4), scalesBefore = before.subarray(qBytes(8 * 256));
      if (dtype === 'q4_0') expect(scales).not.toEqual(scalesBefore); // q4_0x4's quads: the scales follow their rows
      else expect(scales).toEqual(scalesBefore); // q8_0x4 keeps rows apart: its scales stay
      // rearranged, nothing lost or made up; where the dot-add reads weights unsigned q8_0x4 stores each (whole group) byte + 128
      const flip = dtype === 'q8_0' && k.unsignedDots === true;
      const unflipped = once.map((b, i) => (flip && i < qBytes(8 * 256) ? b ^ 0x80 : b));
      expect([...unflipped].sort()).toEqual([...before].sort());
      k.packWeights!(m); // already packed: nothing happens
      expect(k.heap.u8(m.data, bytes)).toEqual(once);
    });
  }

  it('wasm-simd has no packed kernels: its weights stay in ggml\'s layout', async () => {
    const k = await loadNodeKernels('simd');
    const m = place(k, 4, 128, new Rng(6).floats(512, 1), dtype);
    const before = k.heap.u8(m.data, qBytes(512)).slice();
    k.packWeights!(m);
    expect(m.packed).toBeUndefined();
    expect(k.heap.u8(m.data, qBytes(512))).toEqual(before);
  });
});

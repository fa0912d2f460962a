// Writing new keys/values into a KV cache of any dtype, as ggml writes its cache (set_rows / cpy with the CPU
// from_float of the cache type): f16 rounded to nearest even, q8_0 as the activation quantizer (d = f16(amax/127),
// q = nearest(x * 127/amax)), q4_0 as quantize_row_q4_0_ref. Scales are stored widened to f32 (quant.ts's kernel
// layout). One scalar version: it runs once per new position, next to matmuls of the same rows.
import { QK, DT_F32, DT_F16, DT_Q8_0, rowBytes, f32ToF16, f16ToF32 } from './common';

/** Rows row0..row0+nRows-1 of the cache (quants `data`, scales `scales`, rows of `cols`) = x (nRows, cols) f32. */
export function storeRows(dt: i32, x: usize, data: usize, scales: usize, cols: i32, row0: i32, nRows: i32): void {
  const n = nRows * cols;
  const at = row0 * cols;
  if (dt == DT_F32) { memory.copy(data + (<usize>at << 2), x, <usize>n << 2); return; }
  if (dt == DT_F16) {
    const dst = data + (<usize>at << 1);
    for (let i = 0; i < n; i++) store<u16>(dst + (<usize>i << 1), <u16>f32ToF16(load<f32>(x + (<usize>i << 2))));
    return;
  }
  const q = data + <usize>rowBytes(dt, at);
  const s = scales + (<usize>(at / QK) << 2);
  for (let b = 0; b < n / QK; b++) {
    const blk = x + (<usize>(b * QK) << 2);
    if (dt == DT_Q8_0) storeQ8(blk, q + <usize>(b * QK), s + (<usize>b << 2));
    else storeQ4(blk, q + <usize>(b * 16), s + (<usize>b << 2));
  }
}

function storeQ8(x: usize, q: usize, s: usize): void {
  let amax: f32 = 0;
  for (let j = 0; j < QK; j++) amax = max<f32>(amax, abs<f32>(load<f32>(x + (<usize>j << 2))));
  store<f32>(s, f16ToF32(f32ToF16(amax / 127)));
  const id: f32 = amax != 0 ? <f32>127 / amax : 0;
  for (let j = 0; j < QK; j++) store<i8>(q + j, <i8><i32>nearest<f32>(load<f32>(x + (<usize>j << 2)) * id));
}

function storeQ4(x: usize, q: usize, s: usize): void {
  let amax: f32 = 0;
  let mx: f32 = 0; // the signed value of largest magnitude (the first, on ties)
  for (let j = 0; j < QK; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (abs<f32>(v) > amax) { amax = abs<f32>(v); mx = v; }
  }
  const d: f32 = mx / -8;
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  store<f32>(s, f16ToF32(f32ToF16(d)));
  for (let j = 0; j < 16; j++) {
    const x0: f32 = load<f32>(x + (<usize>j << 2)) * id;
    const x1: f32 = load<f32>(x + (<usize>(j + 16) << 2)) * id;
    const q0 = min<i32>(15, <i32>(x0 + <f32>8.5));
    const q1 = min<i32>(15, <i32>(x1 + <f32>8.5));
    store<u8>(q + j, <u8>(q0 | (q1 << 4)));
  }
}

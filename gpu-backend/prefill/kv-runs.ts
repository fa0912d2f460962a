// The webgpu trunk's cache rows (runs of up to 64 positions, values or quants then f32 scales) regrouped into the
// prefill frames' layout for any run of positions: K's values, K's scales, V's values, V's scales.
import { concatBytes } from '../../src/common/bytes';
import { quantBytes } from '../../src/format/quant';
import type { CacheRows } from '../devices/webgpu/trunk';

/** A layer's K and V runs (as the trunk returns them, chunk after chunk) as the frames' byte layout for pos0..pos0+n-1. */
export function kvRowsOf(k: readonly CacheRows[], v: readonly CacheRows[], kvDim: number, pos0: number, n: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const runs of [k, v]) {
    const quants: Uint8Array[] = [];
    const scales: Uint8Array[] = [];
    let at = 0; // position of the run's first row
    for (const r of runs) {
      const rows = r.bytes.length / quantBytes(r.dtype, kvDim);
      const lo = Math.max(pos0, at);
      const hi = Math.min(pos0 + n, at + rows);
      if (lo < hi) {
        const perRow = r.bytes.length / rows;
        quants.push(r.bytes.subarray((lo - at) * perRow, (hi - at) * perRow));
        if (r.scales) {
          const perRowScales = r.scales.length / rows;
          const s = r.scales.subarray((lo - at) * perRowScales, (hi - at) * perRowScales);
          scales.push(new Uint8Array(s.buffer, s.byteOffset, s.byteLength));
        }
      }
      at += rows;
    }
    parts.push(...quants, ...scales);
  }
  return concatBytes(parts);
}

// The device seam of the GPU backend: where expert weights live and where the expert FFN runs (cpu = the
// Worker's WASM kernels on worker_threads; webgpu = WGSL through Dawn). The batcher only ever talks to this.
import type { ExpertEntries } from '../../src/format/manifest';
import type { Activations } from '../../src/protocol/activations';

export type { ExpertEntries }; // one expert's three tensors in its object; defined beside the manifest

/** Tokens for one expert: x (n, H), row-major, in the dtype its call arrived in (q8_0 from the Worker, or f32). */
export interface ExpertGroup {
  readonly expert: number;
  readonly x: Activations;
  readonly n: number;
}

export interface ExpertDevice {
  readonly name: 'cpu' | 'webgpu';
  /**
   * Take one expert's weights: its verified object bytes and the three manifest entries (dtype, shape, offset,
   * bytes; shard layout of src/format/quant.ts: quants then f16 scales). The device may keep or transfer
   * `objectBytes`; the caller does not use them afterwards.
   */
  loadExpert(layer: number, expert: number, entries: ExpertEntries, objectBytes: Uint8Array): Promise<void>;
  /**
   * For each group: y (n, H) = down(silu(gate x) * up x), results in group order. Groups may hit different
   * experts of one layer (and the same expert twice). The device may transfer (detach) the groups' x buffers, and
   * converts what its kernels do not take as they are (cpu: q8_0 and f32 as they are; webgpu: f32 only).
   * The values must be those of the Worker's kernels for the same expert and input (bit for bit on cpu; within
   * the conformance tolerances on webgpu), whatever n is.
   */
  run(layer: number, groups: readonly ExpertGroup[]): Promise<Float32Array[]>;
  /** Bytes of weights resident. */
  readonly residentBytes: number;
  close(): Promise<void>;
}

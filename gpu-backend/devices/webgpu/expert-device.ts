// The `webgpu` ExpertDevice: expert weights resident on the GPU (repacked at load, see wgsl.ts for the layout) and
// every call's groups run as one batch of WGSL dispatches with one readback.
import type { TensorEntry } from '../../../src/format/manifest';
import { shardBytes } from '../../../src/format/quant';
import { activationsToF32 } from '../../../src/protocol/activations';
import type { ExpertDevice, ExpertEntries, ExpertGroup } from '../device';
import type { WebGpuKernels } from './kernels';
import { fromShard, gpuBytes, type GpuTensor } from './layout';

interface Expert { gate: GpuTensor; up: GpuTensor; down: GpuTensor }

export class WebGpuExpertDevice implements ExpertDevice {
  readonly name = 'webgpu' as const;
  private readonly experts = new Map<string, Expert>();
  private bytes = 0;
  private closed = false;

  constructor(private readonly kernels: WebGpuKernels) {}

  /** The adapter, e.g. "NVIDIA H100 [vulkan]" or "llvmpipe: Mesa 25.0.7 ... [vulkan, software]". */
  get adapter(): string { return this.kernels.description; }
  get software(): boolean { return this.kernels.gpu.software; }
  get residentBytes(): number { return this.bytes; }
  get slabCount(): number { return this.kernels.slabCount; }

  async loadExpert(layer: number, expert: number, entries: ExpertEntries, objectBytes: Uint8Array): Promise<void> {
    this.check();
    const key = `${layer}/${expert}`;
    if (this.experts.has(key)) throw new Error(`webgpu device: expert ${key} is already loaded`);
    const [I, H] = matrixShape(entries.gate, 'gate');
    const up = matrixShape(entries.up, 'up');
    const down = matrixShape(entries.down, 'down');
    if (up[0] !== I || up[1] !== H || down[0] !== H || down[1] !== I) {
      throw new RangeError(`webgpu device: expert ${key}: shapes gate [${I},${H}], up [${up}], down [${down}] do not form an FFN`);
    }
    const host = (['gate', 'up', 'down'] as const).map((part) => {
      const e = entries[part];
      const [rows, cols] = matrixShape(e, part);
      const want = shardBytes(e.dtype, rows * cols);
      if (e.bytes !== want || e.offset + e.bytes > objectBytes.length) {
        throw new RangeError(`webgpu device: expert ${key} ${part}: ${e.bytes} bytes at ${e.offset} (want ${want}) in an object of ${objectBytes.length}`);
      }
      return fromShard(e.dtype, rows, cols, objectBytes.subarray(e.offset, e.offset + e.bytes));
    });
    const [gate, upT, downT] = this.kernels.upload(host);
    this.experts.set(key, { gate, up: upT, down: downT });
    this.bytes += host.reduce((s, t) => s + gpuBytes(t), 0);
  }

  async run(layer: number, groups: readonly ExpertGroup[]): Promise<Float32Array[]> {
    this.check();
    const jobs = groups.map((g) => {
      const e = this.experts.get(`${layer}/${g.expert}`);
      if (!e) throw new Error(`webgpu device: expert ${layer}/${g.expert} is not loaded`);
      // the WGSL kernels take f32 and quantize on the GPU: the one place q8_0 rows are widened on the backend
      return { ...e, x: activationsToF32(g.x), n: g.n };
    });
    return this.kernels.ffn(jobs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.experts.clear();
    this.bytes = 0;
    this.kernels.destroy();
  }

  private check(): void {
    if (this.closed) throw new Error('webgpu device is closed');
  }
}

function matrixShape(e: TensorEntry, part: string): [number, number] {
  if (e.shape.length !== 2) throw new RangeError(`webgpu device: ${part} has shape [${e.shape}], want [rows, cols]`);
  return [e.shape[0], e.shape[1]];
}

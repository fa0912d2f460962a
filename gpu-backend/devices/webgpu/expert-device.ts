// The `webgpu` ExpertDevice: expert weights resident on the GPU (kernel-memory layout, see wgsl.ts) and
// every call's groups run as one batch of WGSL dispatches with one readback.
import { hostTensor } from '../../../src/format/tensor-layout';
import { activationsToF32 } from '../../../src/protocol/activations';
import type { ExpertDevice, ExpertEntries, ExpertGroup } from '../device';
import type { WebGpuKernels } from './kernels';
import { gpuBytes, type GpuTensor } from './layout';

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
    const host = [entries.gate, entries.up, entries.down].map((e) => hostTensor(e, objectBytes)); // ManifestError if one does not fit
    const [g, u, d] = host;
    if (u.rows !== g.rows || u.cols !== g.cols || d.rows !== g.cols || d.cols !== g.rows) {
      throw new RangeError(`webgpu device: expert ${key}: shapes gate [${g.rows},${g.cols}], up [${u.rows},${u.cols}], down [${d.rows},${d.cols}] do not form an FFN`);
    }
    const [gate, up, down] = this.kernels.upload(host);
    this.experts.set(key, { gate, up, down });
    this.bytes += host.reduce((s, t) => s + gpuBytes(t), 0);
  }

  /** A resident expert's tensors, for a WebGpuTrunk on the same kernels (its ExpertSource); undefined: not loaded. */
  tensors(layer: number, expert: number): Expert | undefined {
    return this.experts.get(`${layer}/${expert}`);
  }

  /** The kernels (device, weight slabs) the experts live on: a WebGpuTrunk sharing them reads the experts in place. */
  get gpuKernels(): WebGpuKernels { return this.kernels; }

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

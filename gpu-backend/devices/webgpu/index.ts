// Entry of the `webgpu` device (imported lazily by ../select.ts, since it loads Dawn): WGSL expert FFN kernels
// on the first hardware WebGPU adapter, or on a software one when asked (tests, CI).
import { acquireGpu, type AcquireOptions } from './adapter';
import { WebGpuExpertDevice } from './expert-device';
import { WebGpuKernels } from './kernels';

export interface WebGpuDeviceOptions extends AcquireOptions {
  /** Largest weight buffer in bytes (default: the adapter's storage binding limit). */
  slabBytes?: number;
}

/** The webgpu device, or null when no adapter (of the accepted kinds) is found. */
export async function createWebGpuDevice(opts: WebGpuDeviceOptions = {}): Promise<WebGpuExpertDevice | null> {
  const gpu = await acquireGpu(opts);
  return gpu ? new WebGpuExpertDevice(new WebGpuKernels(gpu, opts.slabBytes)) : null;
}

export { WebGpuExpertDevice } from './expert-device';
export { WebGpuKernels } from './kernels';
export { WebGpuTrunk, type AttentionWeights, type ExpertSource, type LayerWeights } from './trunk';
export { WebGpuTrunkKernels } from './trunk-kernels';
export { SETUP_HINT, findSoftwareAdapter, softwareAdapterEnv } from './software-adapter';

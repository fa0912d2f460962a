// Picks the device for --device auto|webgpu|cpu. The WebGPU device is imported lazily (its module pulls in
// Dawn), so the cpu path works wherever Dawn or an adapter is missing. `auto` takes only a hardware GPU (WGSL on
// a software adapter is slower than the WASM cpu device); an explicit `webgpu` also accepts lavapipe / GLES.
import { createCpuDevice } from './cpu';
import type { ExpertDevice } from './device';

export type DeviceChoice = 'auto' | 'webgpu' | 'cpu';

export interface SelectOptions {
  threads?: number;
  log?: (line: string) => void;
}

export async function selectDevice(choice: DeviceChoice, opts: SelectOptions = {}): Promise<ExpertDevice> {
  const log = opts.log ?? (() => {});
  if (choice === 'cpu') return createCpuDevice({ threads: opts.threads });
  let gpu: ExpertDevice | null = null;
  let why = 'no WebGPU adapter found';
  try {
    const { createWebGpuDevice } = await import('./webgpu/index');
    gpu = await createWebGpuDevice({ allowSoftware: choice === 'webgpu' });
  } catch (e) {
    why = `WebGPU device unavailable: ${(e as Error).message}`;
  }
  if (gpu) return gpu;
  if (choice === 'webgpu') throw new Error(`--device webgpu: ${why} (for a software adapter run tools/setup-lavapipe.sh)`);
  log(`device auto: ${why}; using cpu`);
  return createCpuDevice({ threads: opts.threads });
}

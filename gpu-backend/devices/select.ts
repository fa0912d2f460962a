// Picks the device for --device auto|webgpu|cpu. The WebGPU device is imported lazily (its module pulls in
// Dawn), so the cpu path works wherever Dawn or an adapter is missing.
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
  let why: string;
  try {
    const mod = await loadWebGpuModule();
    gpu = mod ? await mod.createWebGpuDevice() : null;
    why = mod ? 'no WebGPU adapter found' : 'gpu-backend/devices/webgpu is not present';
  } catch (e) {
    why = `WebGPU device unavailable: ${(e as Error).message}`;
    if (choice === 'webgpu') throw new Error(`--device webgpu: ${why}`, { cause: e });
  }
  if (gpu) return gpu;
  if (choice === 'webgpu') throw new Error(`--device webgpu: ${why}`);
  log(`device auto: ${why}; using cpu`);
  return createCpuDevice({ threads: opts.threads });
}

type WebGpuModule = { createWebGpuDevice(): Promise<ExpertDevice | null> };

// A computed specifier keeps TypeScript and bundlers from resolving a module that may not exist yet.
async function loadWebGpuModule(): Promise<WebGpuModule | null> {
  const specifier = './webgpu/index';
  try {
    return (await import(/* @vite-ignore */ specifier)) as WebGpuModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const missing = (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && /webgpu[\\/]index/.test(err.message);
    if (missing) return null;
    throw e;
  }
}

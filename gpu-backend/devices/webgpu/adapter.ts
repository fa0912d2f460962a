// Finding a WebGPU adapter through Dawn (the `webgpu` npm package) and opening a device on it: a hardware GPU
// first; a software one (lavapipe from .cache/mesa, else Dawn's OpenGL ES backend on stock Mesa) only on request.
import { create, globals } from 'webgpu';
import { useSoftwareAdapter } from './software-adapter';

export interface AcquireOptions {
  /**
   * Accept a software adapter (CPU rasteriser): for tests and CI. Off by default, so that `--device auto` on a
   * machine without a GPU picks the cpu device, which is much faster than WGSL on a software Vulkan.
   */
  allowSoftware?: boolean;
}

export interface Gpu {
  device: GPUDevice;
  /** the adapter and backend, e.g. "llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) ... [vulkan, software]" */
  description: string;
  software: boolean;
  /** the WGSL implementation has dot4I8Packed (packed_4x8_integer_dot_product) */
  dot4: boolean;
  /** Dawn's GPU object: the Dawn instance lives as long as it is referenced */
  instance: GPU;
}

/** GPUBufferUsage / GPUMapMode flags (Dawn exports them on `globals` rather than on globalThis). */
const flags = globals as unknown as { GPUBufferUsage: typeof GPUBufferUsage; GPUMapMode: typeof GPUMapMode };
export const BufferUsage = flags.GPUBufferUsage;
export const MapMode = flags.GPUMapMode;

type Attempt = { flags: string[]; options?: GPURequestAdapterOptions; backend: string };

/** The adapter and device to run on, or null when there is none (of the accepted kinds). */
export async function acquireGpu(opts: AcquireOptions = {}): Promise<Gpu | null> {
  const native = process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
  const hardware: Attempt = { flags: [], options: { powerPreference: 'high-performance' }, backend: native };
  const first = await tryAdapter(hardware);
  if (first && !isSoftware(first.adapter.info)) return open(first);
  if (!opts.allowSoftware) return null;
  if (first) return open(first); // a software Vulkan the system already has
  if (useSoftwareAdapter()) {
    const lvp = await tryAdapter({ flags: [], backend: 'vulkan' });
    if (lvp) return open(lvp);
  }
  // Stock Mesa without Vulkan: Dawn's GLES backend over EGL without a display (compatibility mode: no f16, no subgroups)
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const gles = await tryAdapter({ flags: ['backend=opengles'], options: { featureLevel: 'compatibility' }, backend: 'opengles' });
  return gles ? open(gles) : null;
}

/** A CPU implementation (lavapipe/llvmpipe, SwiftShader): Dawn flags Vulkan CPU devices; GLES ones only say so by name. */
function isSoftware(info: GPUAdapterInfo): boolean {
  return info.isFallbackAdapter || info.architecture === 'software' || /llvmpipe|lavapipe|softpipe|swiftshader/i.test(`${info.description} ${info.device}`);
}

async function tryAdapter(a: Attempt): Promise<{ instance: GPU; adapter: GPUAdapter; backend: string } | null> {
  try {
    const instance = create(a.flags);
    const adapter = await instance.requestAdapter(a.options);
    return adapter ? { instance, adapter, backend: a.backend } : null;
  } catch {
    return null; // e.g. no libvulkan.so.1 or no EGL: Dawn throws or returns no adapter depending on the backend
  }
}

async function open({ instance, adapter, backend }: { instance: GPU; adapter: GPUAdapter; backend: string }): Promise<Gpu> {
  const l = adapter.limits;
  // Weights live in a few large storage buffers: ask for as much of them as the adapter allows.
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
    },
  });
  const info = adapter.info;
  const software = isSoftware(info);
  let name = info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  if (info.device && !name.includes(info.device)) name += ` (${info.device})`;
  return {
    device,
    description: `${name} [${backend}${software ? ', software' : ''}]`,
    software,
    dot4: instance.wgslLanguageFeatures.has('packed_4x8_integer_dot_product'),
    instance,
  };
}

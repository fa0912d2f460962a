// Finds the project's software WebGPU adapter: Mesa lavapipe (Vulkan on the CPU) that tools/setup-lavapipe.sh
// unpacks into .cache/mesa/. CI has no GPU, so the WebGPU kernels are tested on it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What to tell someone who has no adapter. */
export const SETUP_HINT =
  'install the software adapter with `tools/setup-lavapipe.sh` (as root or with sudo; Debian 12: Mesa 25 lavapipe ' +
  'from bookworm-backports, unpacked into .cache/mesa/)';

const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface SoftwareAdapter {
  /** ICD JSON (absolute library_path), for VK_ICD_FILENAMES */
  icd: string;
  /** folder of the driver and its newer libdrm, for LD_LIBRARY_PATH */
  libDir: string;
}

/** The unpacked lavapipe, or null when tools/setup-lavapipe.sh has not run (or its driver is gone). */
export function findSoftwareAdapter(root = PROJECT_ROOT): SoftwareAdapter | null {
  const icd = join(root, '.cache', 'mesa', 'lvp_icd.json');
  if (!existsSync(icd)) return null;
  try {
    const lib = (JSON.parse(readFileSync(icd, 'utf8')) as { ICD?: { library_path?: string } }).ICD?.library_path;
    return lib && existsSync(lib) ? { icd, libDir: dirname(lib) } : null;
  } catch {
    return null;
  }
}

/**
 * Environment for a child process that should see lavapipe (e.g. the backend spawned by a test with
 * `--device webgpu`). LD_LIBRARY_PATH is read by the dynamic linker at process start, so only children get it.
 */
export function softwareAdapterEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv | null {
  const sw = findSoftwareAdapter();
  if (!sw) return null;
  return {
    ...base,
    VK_ICD_FILENAMES: sw.icd,
    LD_LIBRARY_PATH: base.LD_LIBRARY_PATH ? `${sw.libDir}:${base.LD_LIBRARY_PATH}` : sw.libDir,
  };
}

/**
 * Points this process's Vulkan loader at lavapipe (it reads VK_ICD_FILENAMES when Dawn creates an instance, so
 * setting it before `create()` is enough). Without LD_LIBRARY_PATH the driver binds the system's libdrm, which
 * has every symbol it uses on Debian 12. Never overrides an ICD list someone set on purpose.
 */
export function useSoftwareAdapter(): boolean {
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return false;
  const sw = findSoftwareAdapter();
  if (!sw) return false;
  process.env.VK_ICD_FILENAMES = sw.icd;
  return true;
}

// Node loader for the WASM kernels: reads wasm/build/*.wasm next to this checkout and picks the relaxed-SIMD
// build when the runtime supports it. (The Worker imports the .wasm files instead; see src/worker.ts.)
import { readFile } from 'node:fs/promises';
import { createWasmKernels, type WasmKernelOptions, type WasmVariant } from './wasm';
import { supportsRelaxedSimd } from './wasm-features';
import type { Kernels } from './types';

const BUILD_DIR = new URL('../../wasm/build/', import.meta.url);

export interface KernelModules {
  simd: WebAssembly.Module;
  relaxed: WebAssembly.Module | null; // null where the runtime rejects relaxed-SIMD
}

let modules: Promise<KernelModules> | undefined;

async function compile(file: string): Promise<WebAssembly.Module> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(await readFile(new URL(file, BUILD_DIR)));
  } catch (err) {
    throw new Error(`wasm kernels: cannot read wasm/build/${file}; run \`npm run build:wasm\` first (${(err as Error).message})`);
  }
  return WebAssembly.compile(bytes);
}

/** The compiled kernel modules (cached), e.g. for benchmarks that instantiate them directly. */
export function loadNodeKernelModules(): Promise<KernelModules> {
  modules ??= (async () => ({
    simd: await compile('kernels-simd.wasm'),
    relaxed: supportsRelaxedSimd() ? await compile('kernels-relaxed.wasm') : null,
  }))();
  return modules;
}

/** Kernels of `variant`; by default relaxed where supported, else SIMD. */
export async function loadNodeKernels(variant?: WasmVariant, opts?: WasmKernelOptions): Promise<Kernels> {
  const m = await loadNodeKernelModules();
  const v: WasmVariant = variant ?? (m.relaxed ? 'relaxed' : 'simd');
  if (v === 'relaxed') {
    if (!m.relaxed) throw new Error('wasm kernels: this runtime does not support relaxed-SIMD');
    return createWasmKernels(m.relaxed, 'relaxed', opts);
  }
  return createWasmKernels(m.simd, v, opts);
}

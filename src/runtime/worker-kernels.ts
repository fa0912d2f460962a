// The WASM kernels as a Worker isolate makes them: the relaxed-SIMD build where the runtime validates it, the SIMD
// build otherwise, with the heap capped at the isolate's 128 MB. The .wasm files are imported as compiled modules
// (wrangler's CompiledWasm rule); workerd forbids compiling bytes at run time. The front and the shards share it.
import { createWasmKernels } from '../kernels/wasm';
import { supportsRelaxedSimd } from '../kernels/wasm-features';
import type { Kernels } from '../kernels/types';
import relaxedModule from '../../wasm/build/kernels-relaxed.wasm';
import simdModule from '../../wasm/build/kernels-simd.wasm';

// An isolate has 128 MB in all (https://developers.cloudflare.com/workers/platform/limits/#memory); capping the
// heap there turns an oversized model into a clear error instead of the isolate being killed.
const MAX_HEAP_PAGES = (128 << 20) >> 16;

export function createWorkerKernels(): Kernels {
  const opts = { maximumPages: MAX_HEAP_PAGES };
  return supportsRelaxedSimd() ? createWasmKernels(relaxedModule, 'relaxed', opts) : createWasmKernels(simdModule, 'simd', opts);
}

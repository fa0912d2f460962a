// Loads the served model from R2 into WASM kernels: the relaxed-SIMD build where the runtime validates it,
// the SIMD build otherwise. The .wasm files are imported as compiled modules (wrangler's CompiledWasm rule);
// workerd forbids compiling bytes at run time.
import { loadTextModel, type LoadedModel } from '../engine/load';
import { appConfig, type AppEnv } from '../env';
import { r2Source } from '../format/source-r2';
import { createWasmKernels } from '../kernels/wasm';
import { supportsRelaxedSimd } from '../kernels/wasm-features';
import relaxedModule from '../../wasm/build/kernels-relaxed.wasm';
import simdModule from '../../wasm/build/kernels-simd.wasm';

// An isolate has 128 MB in all; capping the heap there turns an oversized model into a clear error
// instead of the isolate being killed.
const MAX_HEAP_PAGES = (128 << 20) >> 16;

export async function loadModelFromR2(env: AppEnv): Promise<LoadedModel> {
  const cfg = appConfig(env);
  const opts = { maximumPages: MAX_HEAP_PAGES };
  const kernels = supportsRelaxedSimd() ? createWasmKernels(relaxedModule, 'relaxed', opts) : createWasmKernels(simdModule, 'simd', opts);
  return loadTextModel(r2Source(env.MODELS, cfg.modelKeyPrefix), kernels, { id: cfg.modelId });
}

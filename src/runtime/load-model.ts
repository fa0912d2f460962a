// Loads the served model from R2 into WASM kernels: the relaxed-SIMD build where the runtime validates it,
// the SIMD build otherwise. Only the trunk and the hot experts are read (HOT_EXPERTS, or hot-set.json
// beside the model when one is stored). The .wasm files are imported as compiled modules (wrangler's
// CompiledWasm rule); workerd forbids compiling bytes at run time.
import { appConfig, type AppEnv } from '../config/env';
import { r2Source } from '../store/source-r2';
import { parseHotExperts } from '../hotset/spec';
import { r2HotSetStore } from '../hotset/store';
import { createWasmKernels } from '../kernels/wasm';
import { supportsRelaxedSimd } from '../kernels/wasm-features';
import { metrics } from './metrics';
import { ServedModel } from './served-model';
import relaxedModule from '../../wasm/build/kernels-relaxed.wasm';
import simdModule from '../../wasm/build/kernels-simd.wasm';

// An isolate has 128 MB in all; capping the heap there turns an oversized model into a clear error
// instead of the isolate being killed.
const MAX_HEAP_PAGES = (128 << 20) >> 16;

export async function loadModelFromR2(env: AppEnv): Promise<ServedModel> {
  const cfg = appConfig(env);
  const opts = { maximumPages: MAX_HEAP_PAGES };
  const kernels = supportsRelaxedSimd() ? createWasmKernels(relaxedModule, 'relaxed', opts) : createWasmKernels(simdModule, 'simd', opts);
  const untrack = metrics.trackHeap(cfg.modelId, kernels.heap);
  return ServedModel.load(r2Source(env.MODELS, cfg.modelKeyPrefix), kernels, {
    id: cfg.modelId,
    hotExperts: parseHotExperts(cfg.hotExperts),
    budgetBytes: cfg.hotBudgetBytes,
    store: r2HotSetStore(env.MODELS, cfg.modelKeyPrefix),
    refreshMs: cfg.hotSetRefreshMs,
    onGenerationEnd: (usage, result) => metrics.generation(usage, result),
    routing: metrics.routingTally(cfg.modelId),
    kvCacheType: cfg.kvCacheType,
  }).catch((e: unknown) => {
    untrack(); // the model cache forgets a failed load; its memory goes with it
    throw e;
  });
}

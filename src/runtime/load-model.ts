// Loads the served model from R2 into the Worker's WASM kernels (worker-kernels.ts). Only the trunk and the hot
// experts are read (HOT_EXPERTS, or hot-set.json beside the model when one is stored).
import { appConfig, ConfigError, type AppEnv } from '../config/env';
import type { FetchBinding } from '../remote/connect';
import { r2Source } from '../store/source-r2';
import { parseHotExperts } from '../hotset/spec';
import { r2HotSetStore } from '../hotset/store';
import { metrics } from './metrics';
import { ServedModel } from './served-model';
import { createWorkerKernels } from './worker-kernels';

export async function loadModelFromR2(env: AppEnv): Promise<ServedModel> {
  const cfg = appConfig(env);
  const kernels = createWorkerKernels();
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
    shards: cfg.shards && { ...cfg.shards, binding: (name) => serviceBinding(env, name) },
  }).catch((e: unknown) => {
    untrack(); // the model cache forgets a failed load; its memory goes with it
    throw e;
  });
}

/** The service binding `name` of this Worker (a shard named in shard-layout.json); ConfigError when it has none. */
function serviceBinding(env: AppEnv, name: string): FetchBinding {
  const b = (env as unknown as Record<string, unknown>)[name] as Partial<FetchBinding> | undefined;
  if (typeof b?.fetch !== 'function') throw new ConfigError(name, String(b ?? ''), `a service binding to the expert shard ${name} ([[services]] binding = "${name}" in wrangler.toml), as ${appConfig(env).shards?.layoutName} names it`);
  return b as FetchBinding;
}

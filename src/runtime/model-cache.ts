// Per-isolate model cache: one load per model location and hot-set configuration, shared by every
// concurrent request of the isolate (weights are read-only; generations own their scratch). A failed
// load is forgotten, so the next request retries instead of serving a cached failure forever.
import type { TextModel } from '../engine/api';
import { appConfig, type AppEnv } from '../config/env';

export type ModelLoader = (env: AppEnv) => Promise<TextModel>;

export class ModelCache<M extends TextModel = TextModel> {
  private readonly loads = new Map<string, Promise<M>>();

  constructor(private readonly load: (env: AppEnv) => Promise<M>) {}

  /**
   * `waitUntil` ties the load to the request that started it, so a client disconnecting mid-load does not
   * cancel the R2 reads that later requests are waiting on.
   */
  getModel(env: AppEnv, waitUntil: (p: Promise<unknown>) => void): Promise<M> {
    // The hot-set vars and KV_CACHE_TYPE are part of the key: what is resident, and how generations allocate, depends on them (one value per deployment;
    // tests vary them per request).
    const cfg = appConfig(env);
    const key = `${cfg.modelKeyPrefix}\u0000${cfg.hotExperts}\u0000${cfg.hotBudgetBytes}\u0000${cfg.kvCacheType}\u0000${cfg.shards?.layoutName ?? ''}`;
    let p = this.loads.get(key);
    if (!p) {
      p = this.load(env);
      this.loads.set(key, p);
      const loading = p;
      waitUntil(
        loading.catch(() => {
          if (this.loads.get(key) === loading) this.loads.delete(key);
        }),
      );
    }
    return p;
  }
}

// Per-isolate model cache: one load per model location, shared by every concurrent request of the
// isolate (weights are read-only; generations own their scratch). A failed load is forgotten, so the
// next request retries instead of serving a cached failure forever.
import type { TextModel } from '../engine/api';
import { appConfig, type AppEnv } from '../env';

export type ModelLoader = (env: AppEnv) => Promise<TextModel>;

export class ModelCache {
  private readonly loads = new Map<string, Promise<TextModel>>();

  constructor(private readonly load: ModelLoader) {}

  /**
   * `waitUntil` ties the load to the request that started it, so a client disconnecting mid-load does not
   * cancel the R2 reads that later requests are waiting on.
   */
  getModel(env: AppEnv, waitUntil: (p: Promise<unknown>) => void): Promise<TextModel> {
    const key = appConfig(env).modelKeyPrefix;
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

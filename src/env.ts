// The Worker's bindings (generated `Env` from wrangler.toml plus secrets), parsed once into frozen config.
// Regenerate src/worker-configuration.d.ts with:
//   npx wrangler types src/worker-configuration.d.ts --include-runtime=false --strict-vars=false

/** Bindings and vars as the runtime hands them over; API_KEYS is a secret, so it is not in wrangler.toml. */
export type AppEnv = Env & {
  /** Comma-separated bearer keys accepted on /v1/*; unset or empty means no authentication. */
  API_KEYS?: string;
};

export interface AppConfig {
  readonly modelPrefix: string;
  readonly modelId: string;
  /** R2 key prefix of the served model, ending in '/'. */
  readonly modelKeyPrefix: string;
  readonly apiKeys: readonly string[];
  readonly maxBodyBytes: number;
}

const DEFAULT_MAX_BODY_BYTES = 1 << 20;
const parsed = new WeakMap<object, AppConfig>();

/** Parses the env once per env object (workerd hands the same object to every request of an isolate). */
export function appConfig(env: AppEnv): AppConfig {
  let cfg = parsed.get(env);
  if (cfg) return cfg;
  const modelPrefix = (env.MODEL_PREFIX ?? 'models').replace(/^\/+|\/+$/g, '');
  const modelId = env.MODEL_ID || 'default';
  const maxBodyBytes = Number(env.MAX_BODY_BYTES ?? DEFAULT_MAX_BODY_BYTES);
  cfg = Object.freeze({
    modelPrefix,
    modelId,
    modelKeyPrefix: modelPrefix ? `${modelPrefix}/${modelId}/` : `${modelId}/`,
    apiKeys: Object.freeze((env.API_KEYS ?? '').split(',').map((k) => k.trim()).filter((k) => k.length > 0)),
    maxBodyBytes: Number.isFinite(maxBodyBytes) && maxBodyBytes > 0 ? maxBodyBytes : DEFAULT_MAX_BODY_BYTES,
  });
  parsed.set(env, cfg);
  return cfg;
}

// The Worker's bindings (generated `Env` from wrangler.toml plus secrets), parsed once into frozen config.
// Regenerate src/worker-configuration.d.ts with:
//   npx wrangler types src/worker-configuration.d.ts --include-runtime=false --strict-vars=false

import { COLD_POLICIES, DEGRADED_POLICIES, type BackendTarget, type ColdPolicy, type DegradedPolicy } from '../engine/api';
import { MoeError } from '../common/errors';
import { parseReplicas } from '../remote/replicas';
import { DEFAULT_KV_CACHE_TYPE, KV_CACHE_TYPES, type KvCacheType } from '../engine/kv-cache';

/** Bindings and vars as the runtime hands them over; secrets (API_KEYS, BACKEND_TOKEN, ADMIN_TOKEN) are not in wrangler.toml. */
export type AppEnv = Omit<Env, 'HOT_EXPERTS' | 'HOT_BUDGET_MB' | 'HOT_SET_REFRESH_MS' | 'COLD_POLICY' | 'DEGRADED_POLICY' | 'BACKEND_URL' | 'BACKENDS' | 'BACKEND_TIMEOUT_MS' | 'SHARD_LAYOUT' | 'SHARD_TIMEOUT_MS' | 'REMOTE_PREFILL_MIN_TOKENS' | 'SPECULATIVE_MAX_TOKENS' | 'SPECULATIVE_DRAFT_POLICY'> & {
  /** Comma-separated bearer keys accepted on /v1/*; unset or empty means no authentication. */
  API_KEYS?: string;
  HOT_EXPERTS?: string;
  HOT_BUDGET_MB?: string;
  HOT_SET_REFRESH_MS?: string;
  COLD_POLICY?: string;
  DEGRADED_POLICY?: string;
  BACKEND_URL?: string;
  /** Expert parallelism: JSON [{"url", "layers", "experts"}, ...]; replaces BACKEND_URL (see src/remote/replicas.ts). */
  BACKENDS?: string;
  /** Bearer token the backend expects (a secret). */
  BACKEND_TOKEN?: string;
  BACKEND_TIMEOUT_MS?: string;
  /** Bearer token for /admin/*; unset disables the admin routes. */
  ADMIN_TOKEN?: string;
  MAX_PROMPT_TOKENS?: string;
  MAX_COMPLETION_TOKENS?: string;
  MAX_CONCURRENT_GENERATIONS?: string;
  ISOLATE_MEMORY_MB?: string;
  KV_CACHE_TYPE?: string;
  /** front | shard (an expert-shard Worker: the same bundle, serving only /v1/experts/ws); empty: front */
  ROLE?: string;
  /** on a shard: its binding name in shard-layout.json (which slice it loads) */
  SHARD?: string;
  /** shard-layout.json's object name beside the model; empty: no expert shards */
  SHARD_LAYOUT?: string;
  SHARD_TIMEOUT_MS?: string;
  REMOTE_PREFILL_MIN_TOKENS?: string;
  SPECULATIVE_MAX_TOKENS?: string;
  SPECULATIVE_DRAFT_POLICY?: string;
};

export interface AppConfig {
  readonly modelPrefix: string;
  readonly modelId: string;
  /** R2 key prefix of the served model, ending in '/'. */
  readonly modelKeyPrefix: string;
  readonly apiKeys: readonly string[];
  readonly maxBodyBytes: number;
  /** HOT_EXPERTS as written (parsed when the model loads, against its manifest). */
  readonly hotExperts: string;
  /** HOT_BUDGET_MB in bytes; null: no limit. */
  readonly hotBudgetBytes: number | null;
  /** How often an isolate looks for a new hot-set.json (on requests). */
  readonly hotSetRefreshMs: number;
  /** COLD_POLICY; default remote when a backend is configured, else substitute. */
  readonly coldPolicy: ColdPolicy;
  readonly degradedPolicy: DegradedPolicy;
  readonly backend: BackendTarget | null;
  readonly adminToken: string | null;
  /** Request limits (wrangler.toml; see src/runtime/admission.ts for the last two). */
  readonly maxPromptTokens: number;
  readonly maxCompletionTokens: number;
  readonly maxConcurrentGenerations: number;
  /** ISOLATE_MEMORY_MB in bytes: weights + KV caches + scratch of running generations stay within it. */
  readonly isolateMemoryBytes: number;
  /** KV_CACHE_TYPE: the element type of every generation's KV cache (src/engine/kv-cache.ts). */
  readonly kvCacheType: KvCacheType;
  /** ROLE: the front (the API) or an expert shard */
  readonly role: 'front' | 'shard';
  /** SHARD: on a shard, its binding name in the layout (required there) */
  readonly shard: string | null;
  /** SHARD_LAYOUT and SHARD_TIMEOUT_MS; null: no expert shards */
  readonly shards: { readonly layoutName: string; readonly timeoutMs: number } | null;
  /** REMOTE_PREFILL_MIN_TOKENS: prompts this long or longer are prefilled by the backend; 0: never */
  readonly remotePrefillMinTokens: number;
  /** SPECULATIVE_MAX_TOKENS: the most tokens a self-speculative pass drafts; 0: off */
  readonly speculativeMaxTokens: number;
  /** SPECULATIVE_DRAFT_POLICY: how the draft treats cold picks */
  readonly speculativeDraftPolicy: 'drop' | 'substitute';
}

/** A var in wrangler.toml (or a secret) with a value the Worker cannot use: every route answers 500 naming it. */
export class ConfigError extends MoeError {
  constructor(name: string, value: string, expected: string) {
    super(`configuration ${name}=${JSON.stringify(value)} is invalid: expected ${expected}`, { status: 500, code: 'invalid_config', type: 'server_error' });
  }
}

function oneOf<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  const v = (value ?? '').trim();
  if (v === '') return fallback;
  if (!(allowed as readonly string[]).includes(v)) throw new ConfigError(name, v, allowed.join(' | '));
  return v as T;
}

function positive(name: string, value: string | undefined, fallback: number | null): number | null {
  const v = (value ?? '').trim();
  if (v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(name, v, 'a positive number');
  return n;
}

/** BACKEND_URL (one backend serves every expert) or BACKENDS (replicas by layer/expert range; one token for all). */
function backendTarget(env: AppEnv): BackendTarget | null {
  const url = (env.BACKEND_URL ?? '').trim();
  const sharded = (env.BACKENDS ?? '').trim();
  const common = () => ({ token: env.BACKEND_TOKEN ?? '', timeoutMs: positive('BACKEND_TIMEOUT_MS', env.BACKEND_TIMEOUT_MS, 2000)! });
  if (sharded) {
    if (url) throw new ConfigError('BACKEND_URL', url, 'empty when BACKENDS is set (BACKENDS lists every replica)');
    const replicas = Object.freeze(parseReplicas(sharded));
    return { url: replicas[0].url, ...common(), replicas };
  }
  if (!url) return null;
  if (!/^(https?|wss?):\/\/[^/]/i.test(url)) throw new ConfigError('BACKEND_URL', url, 'an http(s):// URL');
  return { url, ...common() };
}

const DEFAULT_MAX_BODY_BYTES = 1 << 20;
// Defaults when a limit's var is absent or empty: the same values wrangler.toml ships with.
const DEFAULT_LIMITS = { MAX_PROMPT_TOKENS: 4096, MAX_COMPLETION_TOKENS: 2048, MAX_CONCURRENT_GENERATIONS: 16, ISOLATE_MEMORY_MB: 96 } as const;

function positiveInt(name: keyof typeof DEFAULT_LIMITS, value: string | undefined): number {
  const n = positive(name, value, DEFAULT_LIMITS[name])!;
  if (!Number.isSafeInteger(n)) throw new ConfigError(name, String(value), 'a positive integer');
  return n;
}
/**
 * REMOTE_PREFILL_MIN_TOKENS when unset: a conservative prompt length from which a backend prefill plus the KV stream
 * beats prefilling in the isolate (an earlier bench:prefill crossover on the CPU stand-in; a real GPU crosses over far
 * sooner: docs/remote-prefill.md says where each figure came from; wrangler.toml ships the same value).
 */
export const DEFAULT_REMOTE_PREFILL_MIN_TOKENS = 256;
/** SPECULATIVE_MAX_TOKENS when unset (wrangler.toml ships the same): see bench/results/split.md's speculative rows. */
export const DEFAULT_SPECULATIVE_MAX_TOKENS = 8;

function nonNegativeInt(name: string, value: string | undefined, fallback: number): number {
  const v = (value ?? '').trim();
  if (v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(name, v, 'an integer >= 0 (0 disables)');
  return n;
}

const parsed = new WeakMap<object, AppConfig>();

/** Parses the env once per env object (workerd hands the same object to every request of an isolate). */
export function appConfig(env: AppEnv): AppConfig {
  let cfg = parsed.get(env);
  if (cfg) return cfg;
  const modelPrefix = (env.MODEL_PREFIX ?? 'models').replace(/^\/+|\/+$/g, '');
  const modelId = env.MODEL_ID || 'default';
  const maxBodyBytes = Number(env.MAX_BODY_BYTES ?? DEFAULT_MAX_BODY_BYTES);
  const budgetMb = positive('HOT_BUDGET_MB', env.HOT_BUDGET_MB, null);
  const backend = backendTarget(env);
  const role = oneOf('ROLE', env.ROLE, ['front', 'shard'] as const, 'front');
  const shard = (env.SHARD ?? '').trim() || null;
  if (role === 'shard' && shard === null) throw new ConfigError('SHARD', '', "this shard's binding name in shard-layout.json (e.g. SHARD_0)");
  const layoutName = (env.SHARD_LAYOUT ?? '').trim();
  if (layoutName && (!/^[\w.-]+(\/[\w.-]+)*$/.test(layoutName) || layoutName.split('/').some((p) => p === '.' || p === '..'))) {
    throw new ConfigError('SHARD_LAYOUT', layoutName, 'an object name beside the model, e.g. shard-layout.json');
  }
  cfg = Object.freeze({
    modelPrefix,
    modelId,
    modelKeyPrefix: modelPrefix ? `${modelPrefix}/${modelId}/` : `${modelId}/`,
    apiKeys: Object.freeze((env.API_KEYS ?? '').split(',').map((k) => k.trim()).filter((k) => k.length > 0)),
    maxBodyBytes: Number.isFinite(maxBodyBytes) && maxBodyBytes > 0 ? maxBodyBytes : DEFAULT_MAX_BODY_BYTES,
    hotExperts: (env.HOT_EXPERTS ?? '').trim() || 'all',
    hotBudgetBytes: budgetMb === null ? null : Math.floor(budgetMb * 1024 * 1024),
    hotSetRefreshMs: positive('HOT_SET_REFRESH_MS', env.HOT_SET_REFRESH_MS, 2000)!,
    coldPolicy: oneOf('COLD_POLICY', env.COLD_POLICY, COLD_POLICIES, backend ? 'remote' : 'substitute'),
    degradedPolicy: oneOf('DEGRADED_POLICY', env.DEGRADED_POLICY, DEGRADED_POLICIES, 'substitute'),
    backend,
    adminToken: env.ADMIN_TOKEN ? env.ADMIN_TOKEN : null,
    maxPromptTokens: positiveInt('MAX_PROMPT_TOKENS', env.MAX_PROMPT_TOKENS),
    maxCompletionTokens: positiveInt('MAX_COMPLETION_TOKENS', env.MAX_COMPLETION_TOKENS),
    maxConcurrentGenerations: positiveInt('MAX_CONCURRENT_GENERATIONS', env.MAX_CONCURRENT_GENERATIONS),
    kvCacheType: oneOf('KV_CACHE_TYPE', env.KV_CACHE_TYPE, KV_CACHE_TYPES, DEFAULT_KV_CACHE_TYPE),
    role,
    shard,
    // a shard's first call may wait for it to load its slice from R2: a longer default than the backend's
    shards: layoutName ? Object.freeze({ layoutName, timeoutMs: positive('SHARD_TIMEOUT_MS', env.SHARD_TIMEOUT_MS, 10_000)! }) : null,
    speculativeMaxTokens: nonNegativeInt('SPECULATIVE_MAX_TOKENS', env.SPECULATIVE_MAX_TOKENS, DEFAULT_SPECULATIVE_MAX_TOKENS),
    speculativeDraftPolicy: oneOf('SPECULATIVE_DRAFT_POLICY', env.SPECULATIVE_DRAFT_POLICY, ['substitute', 'drop'] as const, 'substitute'),
    remotePrefillMinTokens: nonNegativeInt('REMOTE_PREFILL_MIN_TOKENS', env.REMOTE_PREFILL_MIN_TOKENS, DEFAULT_REMOTE_PREFILL_MIN_TOKENS),
    isolateMemoryBytes: Math.floor(positive('ISOLATE_MEMORY_MB', env.ISOLATE_MEMORY_MB, DEFAULT_LIMITS.ISOLATE_MEMORY_MB)! * 1024 * 1024),
  });
  parsed.set(env, cfg);
  return cfg;
}

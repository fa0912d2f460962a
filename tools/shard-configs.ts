// The Worker configurations of a sharded deployment, as plain objects in wrangler's config shape: the front (the
// project's wrangler.toml plus one [[services]] binding per shard and SHARD_LAYOUT) and each expert shard (the same
// bundle with ROLE = "shard", its binding name, the models bucket, no public route). One builder for the configs
// `plan --write` emits as TOML and for the JSON ones the local multi-Worker starter runs.
import { fileURLToPath } from 'node:url';
import { SHARD_LAYOUT_OBJECT } from '../src/shard/layout';
import { keepWranglerOffline } from './dev/offline-env';

export const PROJECT_CONFIG = fileURLToPath(new URL('../wrangler.toml', import.meta.url));

export interface ShardRef {
  readonly binding: string;
  readonly worker: string;
}

/** What the shard configs share with the front's: read from the project's wrangler.toml. */
export interface BaseConfig {
  readonly name: string;
  /** absolute path of the Worker entry */
  readonly main: string;
  readonly compatibility_date: string;
  readonly compatibility_flags: readonly string[];
  readonly rules: readonly { type: string; globs: string[]; fallthrough?: boolean }[];
  readonly r2_buckets: readonly { binding: string; bucket_name: string }[];
  readonly vars: Readonly<Record<string, string>>;
}

export async function readBaseConfig(configPath = PROJECT_CONFIG): Promise<BaseConfig> {
  keepWranglerOffline();
  // imported only now, after the offline settings are in the environment it reads
  const { unstable_readConfig } = await import('wrangler');
  const c = unstable_readConfig({ config: configPath }, { hideWarnings: true });
  if (!c.name || !c.main || !c.compatibility_date) throw new Error(`${configPath}: needs name, main and compatibility_date`);
  if (!c.r2_buckets.some((b: { binding: string }) => b.binding === 'MODELS')) throw new Error(`${configPath}: no r2 bucket bound as MODELS`);
  return {
    name: c.name,
    main: c.main,
    compatibility_date: c.compatibility_date,
    compatibility_flags: c.compatibility_flags,
    rules: c.rules.map((r: { type: string; globs: string[]; fallthrough?: boolean }) => ({ type: r.type, globs: [...r.globs], ...(r.fallthrough === undefined ? {} : { fallthrough: r.fallthrough }) })),
    r2_buckets: c.r2_buckets.map((b: { binding: string; bucket_name?: string }) => ({ binding: b.binding, bucket_name: b.bucket_name! })),
    vars: Object.fromEntries(Object.entries(c.vars).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])),
  };
}

/** What every Worker of the deployment shares: the bundle, its runtime settings and the models bucket. */
function bundle(base: BaseConfig) {
  return { main: base.main, compatibility_date: base.compatibility_date, compatibility_flags: [...base.compatibility_flags], rules: base.rules, r2_buckets: base.r2_buckets };
}

/** The front: the project's config with a service binding per shard and SHARD_LAYOUT set. */
export function frontConfig(base: BaseConfig, shards: readonly ShardRef[], vars: Record<string, string> = {}): Record<string, unknown> {
  return {
    name: base.name,
    ...bundle(base),
    vars: { ...base.vars, ...(shards.length > 0 ? { SHARD_LAYOUT: SHARD_LAYOUT_OBJECT } : {}), ...vars },
    services: shards.map((s) => ({ binding: s.binding, service: s.worker })),
  };
}

/** One expert shard: the same bundle in the shard role, reachable only through the front's binding. */
export function shardConfig(base: BaseConfig, shard: ShardRef, vars: Record<string, string> = {}): Record<string, unknown> {
  return {
    name: shard.worker,
    ...bundle(base),
    // no workers.dev URL and no route: nothing but a service binding can call it
    workers_dev: false,
    vars: {
      MODEL_PREFIX: base.vars.MODEL_PREFIX ?? 'models',
      MODEL_ID: base.vars.MODEL_ID ?? 'default',
      ROLE: 'shard',
      SHARD: shard.binding,
      SHARD_LAYOUT: SHARD_LAYOUT_OBJECT,
      ...vars,
    },
  };
}

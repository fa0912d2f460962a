// One tier configuration of the tiers bench as deployed locally: the front (HOT_EXPERTS none) and its expert-shard
// Workers in one `wrangler dev` (one isolate each, tools/dev/local-workers.ts), the rest of the experts on the
// already running GPU backend or, with every expert at the edge, no backend at all.
import { shardLayoutDocument, shardNames } from '../../src/shard/layout';
import type { ShardRef } from '../../tools/shard-configs';
import { startLocalWorkers, type LocalWorkers } from '../../tools/dev/local-workers';
import type { EdgeSplit } from './split';

export interface TierConfig {
  /** e.g. "25%" */
  label: string;
  fraction: number;
  split: EdgeSplit;
  /** the layout object beside the model (null: no shards) */
  layout: string | null;
  shards: ShardRef[];
}

/** The layout document of a split (front name as in wrangler.toml). */
export function layoutOf(modelName: string, split: EdgeSplit) {
  return shardLayoutDocument(modelName, split.plan.shards.map((t, i) => ({ ...shardNames('moe-edge', i), layers: t.layers })));
}

export interface Backend {
  url: string;
  token: string;
}

/** Starts the configuration; `frontVars` over the bench's defaults. */
export function deploy(c: TierConfig, model: string, persistTo: string, backend: Backend | null, frontVars: Record<string, string>): Promise<LocalWorkers> {
  const edgeOnly = c.split.plan.gpu.experts === 0;
  if (!edgeOnly && !backend) throw new Error(`${c.label}: ${c.split.plan.gpu.experts} experts need the backend`);
  const hot = c.split.plan.front.experts === 0 ? 'none' : JSON.stringify({ layers: Object.fromEntries(c.split.plan.front.layers.map((r, l) => [String(l), r])) });
  return startLocalWorkers({
    shards: c.shards,
    persistTo,
    vars: {
      MODEL_ID: model,
      HOT_EXPERTS: hot,
      SHARD_LAYOUT: c.layout ?? '',
      // a slow tier must show as slow, not degrade: a missing expert fails the run instead
      DEGRADED_POLICY: 'error',
      ...(edgeOnly ? { BACKEND_URL: '', COLD_POLICY: '' } : { BACKEND_URL: backend!.url, BACKEND_TOKEN: backend!.token, COLD_POLICY: 'remote' }),
      ...frontVars,
    },
  });
}

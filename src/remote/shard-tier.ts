// The edge's second tier: expert-shard Workers reached through service bindings, each holding a planned slice of
// experts (shard-layout.json). A generation opens one WebSocket per shard it needs, through the binding, and keeps
// it to its end, exactly like its socket to the GPU backend: a long generation makes one subrequest per shard, not
// one per layer and token (Workers count every binding call as a subrequest, 10,000 per request on paid plans, 50
// on free: https://developers.cloudflare.com/workers/platform/limits/#subrequests), and binding calls are not
// network connections, so they do not take from the 6 simultaneous ones
// (https://developers.cloudflare.com/workers/platform/limits/#simultaneous-open-connections).
import type { HeadExecutor } from '../engine/head';
import type { Architecture } from '../format/manifest';
import type { Kernels } from '../kernels/types';
import type { ShardLayout } from '../shard/layout';
import { RemoteHead } from './remote-head';
import { openExpertSocket, type FetchBinding } from './connect';
import { ShardedSession, type ModelLayout } from './sharded-session';
import type { RemoteExperts } from './session';

/** The shard tier as a generation sees it: calls for the experts it owns, and the head when a shard holds it. */
export interface EdgeExperts extends RemoteExperts {
  owns(layer: number, expert: number): boolean;
  readonly head?: HeadExecutor;
}

export interface ShardTier {
  readonly layout: ShardLayout;
  /** bindings[i] reaches layout.doc.shards[i] */
  readonly bindings: readonly FetchBinding[];
  /** Longest wait for a shard's connection (its first request may load its slice) or one reply. */
  readonly timeoutMs: number;
}

/**
 * The generation's connection to the shards that own a non-resident expert of `layout.hot`, and to the head shard
 * when the layout has one (the front's weights then have no embedding / output head).
 */
export function connectShards(tier: ShardTier, modelTag: Uint8Array, layout: ModelLayout, k: Kernels, arch: Architecture): EdgeExperts {
  const endpoints = tier.layout.doc.shards.map((s, i) => ({
    // the host is never resolved: the binding routes the request to the shard Worker
    target: { url: `https://${s.binding.toLowerCase()}.shard`, token: '', timeoutMs: tier.timeoutMs },
    open: () => openExpertSocket(endpoints[i].target, tier.bindings[i]),
  }));
  const sharded = new ShardedSession(endpoints, modelTag, tier.layout.owner, layout);
  const h = tier.layout.headShard;
  return h === null ? sharded : Object.assign(sharded, { head: new RemoteHead(k, sharded.endpoint(h), arch) });
}

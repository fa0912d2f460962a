// shard-layout.json: which expert-shard Worker holds which experts. One object in R2 beside the model, read by
// the front Worker (to route each (layer, expert) pick) and by every shard (to load its own slice), so both
// always agree. Written by `npm run cli -- plan --shards N --write <dir>`. An R2 object rather than a var:
// 24 layers x 32 experts per shard is ~2.4 KB of JSON each, and Workers vars stop at 5 KB
// (https://developers.cloudflare.com/workers/platform/limits/#environment-variables).
import { z } from 'zod';
import { MoeError } from '../common/errors';
import type { Architecture } from '../format/manifest';

export const SHARD_LAYOUT_FORMAT = 'moe-edge-shard-layout/1';
/** The layout's conventional object name beside the model (SHARD_LAYOUT's value in the written configs). */
export const SHARD_LAYOUT_OBJECT = 'shard-layout.json';

/**
 * Workers allow a request to invoke at most 32 Workers through service bindings (the front's own invocation
 * included; https://developers.cloudflare.com/workers/runtime-apis/bindings/service-bindings/#limits): a
 * generation opens one socket per shard, so the front plus 31 shards is the ceiling. We stop at 16 to leave
 * room for the rest of a deployment's bindings.
 */
export const MAX_SHARDS = 16;

const LayerKey = z.string().regex(/^(0|[1-9]\d{0,4})$/, 'layer keys are decimal integers');
const BindingName = z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'a binding name is upper case: letters, digits, _');
const WorkerName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a Worker name is lower case: letters, digits, -');

export const ShardLayoutSchema = z
  .object({
    format: z.literal(SHARD_LAYOUT_FORMAT),
    /** manifest.json's name: a layout planned for another model is refused */
    model: z.string().min(1),
    shards: z
      .array(
        z
          .object({
            /** the service binding the front reaches it by (env[binding]) */
            binding: BindingName,
            /** its Worker script's name (wrangler.toml `name`) */
            worker: WorkerName,
            /** layer -> the experts it holds there, ascending */
            layers: z.record(LayerKey, z.array(z.number().int().nonnegative())),
            /** it also holds the token embedding and output head (the front is loaded without them); one shard at most */
            head: z.boolean().optional(),
          })
          .strict(),
      )
      .max(MAX_SHARDS),
  })
  .strict();

export type ShardLayoutDoc = z.infer<typeof ShardLayoutSchema>;

/** A layout checked against a model: owner[layer * numExperts + expert] = shard index, or NO_SHARD. */
export interface ShardLayout {
  readonly doc: ShardLayoutDoc;
  readonly numExperts: number;
  readonly owner: Uint8Array;
  /** experts of each shard, per layer (ascending) */
  readonly slices: readonly (readonly (readonly number[])[])[];
  /** the shard that holds the embedding and output head; null: the front holds them */
  readonly headShard: number | null;
}

export const NO_SHARD = 0xff;

/** A shard layout that cannot be used with this model (bad JSON, unknown expert, two owners): 500 at load. */
export class ShardLayoutError extends MoeError {
  constructor(message: string) {
    super(`shard layout: ${message}`, { status: 500, code: 'invalid_shard_layout', type: 'server_error' });
  }
}

/** Parses and checks shard-layout.json against the model it is served with. */
export function parseShardLayout(json: unknown, modelName: string, arch: Pick<Architecture, 'numLayers' | 'numExperts'>): ShardLayout {
  const r = ShardLayoutSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ShardLayoutError(`${issue.message}${issue.path.length ? ` at ${issue.path.map(String).join('.')}` : ''}`);
  }
  const doc = r.data;
  if (doc.model !== modelName) throw new ShardLayoutError(`planned for model ${doc.model}, not ${modelName}`);
  const { numLayers: L, numExperts: E } = arch;
  const owner = new Uint8Array(L * E).fill(NO_SHARD);
  const seen = new Set<string>();
  const slices = doc.shards.map((s, i) => {
    if (seen.has(s.binding)) throw new ShardLayoutError(`binding ${s.binding} is named by two shards`);
    seen.add(s.binding);
    const perLayer: number[][] = Array.from({ length: L }, () => []);
    for (const [key, experts] of Object.entries(s.layers)) {
      const l = Number(key);
      if (l >= L) throw new ShardLayoutError(`${s.binding}: layer ${l} does not exist (the model has ${L})`);
      for (const e of experts) {
        if (e >= E) throw new ShardLayoutError(`${s.binding}: expert ${l}/${e} does not exist (the model has ${E} per layer)`);
        const at = l * E + e;
        if (owner[at] !== NO_SHARD) throw new ShardLayoutError(`expert ${l}/${e} is held by both ${doc.shards[owner[at]].binding} and ${s.binding}`);
        owner[at] = i;
        perLayer[l].push(e);
      }
    }
    for (const row of perLayer) row.sort((a, b) => a - b);
    return perLayer;
  });
  const heads = doc.shards.flatMap((s, i) => (s.head ? [i] : []));
  if (heads.length > 1) throw new ShardLayoutError(`the head is held by ${heads.map((i) => doc.shards[i].binding).join(' and ')}; one shard at most`);
  return { doc, numExperts: E, owner, slices, headShard: heads[0] ?? null };
}

/** The layout document for shards holding `slices[i][layer]` (what the planner writes). */
export function shardLayoutDocument(model: string, shards: readonly { binding: string; worker: string; layers: readonly (readonly number[])[]; head?: boolean }[]): ShardLayoutDoc {
  return {
    format: SHARD_LAYOUT_FORMAT,
    model,
    shards: shards.map((s) => ({
      binding: s.binding,
      worker: s.worker,
      layers: Object.fromEntries(s.layers.flatMap((experts, l) => (experts.length > 0 ? [[String(l), [...experts].sort((a, b) => a - b)]] : []))),
      ...(s.head ? { head: true } : {}),
    })),
  };
}

/** The conventional names of shard i: binding SHARD_<i>, Worker <front>-shard-<i>. */
export function shardNames(frontWorker: string, i: number): { binding: string; worker: string } {
  return { binding: `SHARD_${i}`, worker: `${frontWorker}-shard-${i}` };
}

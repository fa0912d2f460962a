// Reads shard-layout.json (SHARD_LAYOUT) from beside the model and checks it against the model's manifest: the
// front routes by it, each shard loads its slice by it. JSON, not a digest-checked object: it is config, written
// by the planner and uploaded with the model, and a bad one is refused whole (ShardLayoutError).
import { ObjectNotFoundError } from '../common/errors';
import type { Manifest } from '../format/manifest';
import type { ObjectSource } from '../store/source';
import { parseShardLayout, ShardLayoutError, type ShardLayout } from './layout';

export async function readShardLayout(source: ObjectSource, name: string, manifest: Manifest): Promise<ShardLayout> {
  let bytes: Uint8Array;
  try {
    bytes = await source.get(name);
  } catch (e) {
    if (e instanceof ObjectNotFoundError) throw new ShardLayoutError(`${source.describe()}/${name} is missing (SHARD_LAYOUT names it; upload it with the model)`);
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ShardLayoutError(`${source.describe()}/${name} is not JSON (${(e as Error).message})`);
  }
  return parseShardLayout(json, manifest.name, manifest.architecture);
}

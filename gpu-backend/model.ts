// The backend's view of a model: manifest, model tag, and this replica's layer/expert range loaded onto the
// device from verified objects. Replicas split a model by ranges (expert parallelism); each loads only its own.
import { forEachLimited } from '../src/common/for-each-limited';
import { readExpert } from '../src/engine/model';
import type { Manifest } from '../src/format/manifest';
import { readTaggedManifest, type ObjectSource } from '../src/store/source';
import { inIdRange, type IdRange } from '../src/protocol/id-range';
import type { ExpertDevice } from './devices/device';

export interface LoadModelOptions {
  layers?: IdRange; // default: every layer
  experts?: IdRange; // default: every expert
  /** Objects read at once (R2 latency hides behind parallel reads). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface BackendModel {
  readonly name: string;
  readonly manifest: Manifest;
  readonly tag: Uint8Array; // first 8 bytes of SHA-256(manifest.json)
  readonly hidden: number;
  readonly layers: IdRange;
  readonly experts: IdRange;
  readonly loadedExperts: number;
  readonly objectBytes: number; // bytes of expert objects read
}

export async function loadBackendModel(source: ObjectSource, device: ExpertDevice, opts: LoadModelOptions = {}): Promise<BackendModel> {
  const { manifest, tag } = await readTaggedManifest(source);
  const a = manifest.architecture;
  const layers = checkRange('layers', opts.layers ?? { lo: 0, hi: a.numLayers - 1 }, a.numLayers);
  const experts = checkRange('experts', opts.experts ?? { lo: 0, hi: a.numExperts - 1 }, a.numExperts);

  const todo: [number, number][] = [];
  for (let l = layers.lo; l <= layers.hi; l++) for (let e = experts.lo; e <= experts.hi; e++) todo.push([l, e]);
  let done = 0;
  let objectBytes = 0;
  await forEachLimited(todo, opts.concurrency ?? 8, async ([l, e]) => {
    const { entries, bytes } = await readExpert(source, manifest, l, e);
    objectBytes += bytes.length;
    await device.loadExpert(l, e, entries, bytes);
    opts.onProgress?.(++done, todo.length);
  });
  return Object.freeze({
    name: manifest.name,
    manifest,
    tag,
    hidden: a.hiddenSize,
    layers,
    experts,
    loadedExperts: todo.length,
    objectBytes,
  });
}

/** True when (layer, expert) is in this replica's range. */
export function serves(m: BackendModel, layer: number, expert: number): boolean {
  return inIdRange(m.layers, layer) && inIdRange(m.experts, expert);
}

function checkRange(what: string, r: IdRange, count: number): IdRange {
  if (!Number.isInteger(r.lo) || !Number.isInteger(r.hi) || r.lo < 0 || r.hi < r.lo || r.hi >= count) {
    throw new RangeError(`--${what} ${r.lo}-${r.hi} is outside the model's 0-${count - 1}`);
  }
  return Object.freeze({ lo: r.lo, hi: r.hi });
}

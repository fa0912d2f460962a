// The model's weights resident in the kernel heap, loaded from verified objects (the trunk streamed into place,
// chosen experts read whole; the backend reads its experts through readExpert too). Read-only once loaded; a
// hot-set change builds a new ModelWeights over the same trunk.
import { expertEntries, objectNames, tensorEntry, tensorNames, type Architecture, type ExpertEntries, type Manifest } from '../format/manifest';
import { listedObject, readVerified, type ObjectSource } from '../store/source';
import { memoryBytes } from '../format/quant';
import { checkShard } from '../format/tensor-layout';
import type { Kernels, Mat } from '../kernels/types';
import { allocMat, checkVec, plannedBytes, releaseMat, reserveHeap, streamIntoHeap, trunkEntries, uploadMat, vecOf, type Pending, type Vec } from './weights';

export interface ExpertWeights {
  readonly gate: Mat; // (I, H)
  readonly up: Mat; // (I, H)
  readonly down: Mat; // (H, I)
}

export interface LayerWeights {
  readonly attnNorm: Vec;
  readonly q: Mat; // (nHead*hd, H)
  readonly k: Mat; // (nKv*hd, H)
  readonly v: Mat; // (nKv*hd, H)
  readonly o: Mat; // (H, nHead*hd)
  readonly qBias?: Vec;
  readonly kBias?: Vec;
  readonly vBias?: Vec;
  readonly qNorm?: Vec; // (nHead*hd) for 'full', (hd) for 'per_head'
  readonly kNorm?: Vec;
  readonly ffnNorm: Vec;
  readonly router: Mat; // (E, H), f32
  readonly shared?: ExpertWeights;
  readonly sharedGate?: Mat; // (1, H): sigmoid gate of the shared expert
}

export interface ModelWeights {
  readonly arch: Architecture;
  /** (vocab, H); absent when an expert shard holds the head (loadTrunk's `head: false`) */
  readonly embed?: Mat;
  readonly outputNorm: Vec;
  /** (vocab, H); the embedding itself when tied; absent with `embed` */
  readonly output?: Mat;
  readonly layers: readonly LayerWeights[];
  /** experts[layer][expert], undefined where the expert is not resident here */
  readonly experts: readonly (readonly (ExpertWeights | undefined)[])[];
  /** Bytes of heap the weights occupy. */
  readonly bytes: number;
}

/** Which experts to load: all of them, or a per-layer list. */
export type ExpertSelection = 'all' | ReadonlyMap<number, readonly number[]>;

/** Everything but the routed experts: loaded once per isolate and shared by every hot-set version. */
export type TrunkWeights = Omit<ModelWeights, 'experts'>;

export async function loadWeights(k: Kernels, source: ObjectSource, manifest: Manifest, experts: ExpertSelection = 'all'): Promise<ModelWeights> {
  const trunk = await loadTrunk(k, source, manifest);
  const arch = manifest.architecture;
  const resident: (ExpertWeights | undefined)[][] = [];
  for (let l = 0; l < arch.numLayers; l++) {
    const row: (ExpertWeights | undefined)[] = new Array(arch.numExperts).fill(undefined);
    const wanted = experts === 'all' ? [...row.keys()] : (experts.get(l) ?? []);
    for (const e of wanted) row[e] = await loadExpert(k, source, manifest, l, e);
    resident.push(row);
  }
  return withExperts(trunk, resident);
}

/** A weights object over a shared trunk and a set of resident experts (a hot-set version). */
export function withExperts(trunk: TrunkWeights, experts: readonly (readonly (ExpertWeights | undefined)[])[]): ModelWeights {
  let bytes = trunk.bytes;
  for (const row of experts) for (const e of row) if (e) bytes += expertBytes(e);
  return Object.freeze({ ...trunk, experts, bytes });
}

/**
 * The trunk into the heap: every tensor's room allocated first (in the order the engine has always used), then
 * each object holding trunk tensors streamed once, its bytes copied into place as they pass, and its SHA-256
 * checked at the end (streamIntoHeap). Nothing is returned before every digest matched; on any failure every
 * tensor is released again and the error thrown (ShardIntegrityError, ObjectReadError, ...).
 */
export async function loadTrunk(k: Kernels, source: ObjectSource, manifest: Manifest, opts: { head?: boolean } = {}): Promise<TrunkWeights> {
  return loadTensors(k, source, manifest, opts.head ?? true, true) as Promise<TrunkWeights>;
}

/** The embedding and output head alone (an expert shard that holds the head for a front loaded without it). */
export async function loadHead(k: Kernels, source: ObjectSource, manifest: Manifest): Promise<{ embed: Mat; output: Mat; bytes: number }> {
  const w = await loadTensors(k, source, manifest, true, false);
  return { embed: w.embed!, output: w.output!, bytes: w.bytes };
}

async function loadTensors(k: Kernels, source: ObjectSource, manifest: Manifest, withHead: boolean, withLayers: boolean): Promise<Partial<TrunkWeights> & { bytes: number }> {
  const arch = manifest.architecture;
  const before = k.heap.usedBytes;
  reserveHeap(k, plannedBytes(manifest, () => trunkEntries(manifest, { head: withHead, layers: withLayers }))); // one grow, not one per tensor
  const pending: Pending[] = [];
  const mat = (name: string): Mat => {
    const entry = tensorEntry(manifest, name);
    checkShard(entry, listedObject(manifest, entry.object).bytes); // a bad entry fails before a byte is read
    const m = allocMat(k, entry);
    pending.push({ entry, mat: m });
    return m;
  };
  const vec = (name: string): Vec => {
    checkVec(tensorEntry(manifest, name));
    return vecOf(mat(name));
  };
  // present exactly when the architecture's flag says so: a manifest that disagrees fails here, not mid-forward
  // and not by silently skipping a tensor
  const flagged = (on: boolean, name: string) => {
    if (!on && manifest.tensors[name]) throw new Error(`manifest has tensor ${name}, which its architecture flags do not use`);
    return on ? vec(name) : undefined;
  };
  const t = tensorNames;
  try {
    const embed = withHead ? mat(t.tokenEmbedding) : undefined;
    const outputNorm = withLayers ? vec(t.outputNorm) : undefined;
    const output = !withHead ? undefined : arch.tieWordEmbeddings ? embed : mat(t.output);
    const layers: LayerWeights[] = [];
    for (let l = 0; withLayers && l < arch.numLayers; l++) {
      layers.push({
        attnNorm: vec(t.attnNorm(l)),
        q: mat(t.attnQ(l)),
        k: mat(t.attnK(l)),
        v: mat(t.attnV(l)),
        o: mat(t.attnOutput(l)),
        qBias: flagged(arch.qkvBias, t.attnQBias(l)),
        kBias: flagged(arch.qkvBias, t.attnKBias(l)),
        vBias: flagged(arch.qkvBias, t.attnVBias(l)),
        qNorm: flagged(arch.qkNorm !== 'none', t.attnQNorm(l)),
        kNorm: flagged(arch.qkNorm !== 'none', t.attnKNorm(l)),
        ffnNorm: vec(t.ffnNorm(l)),
        router: mat(t.router(l)),
        shared: arch.sharedExpertFfnSize > 0 ? { gate: mat(t.sharedGate(l)), up: mat(t.sharedUp(l)), down: mat(t.sharedDown(l)) } : undefined,
        sharedGate: arch.sharedExpertGate ? mat(t.sharedExpertGate(l)) : undefined,
      });
    }
    // one pass per object (the converter writes one, trunk.bin), in the order tensors were first met
    const objects = [...new Set(pending.map((p) => p.entry.object))];
    for (const name of objects) await streamIntoHeap(k, source, manifest, name, pending.filter((p) => p.entry.object === name));
    for (const p of pending) k.packWeights?.(p.mat); // digests matched: into the executor's fastest layout (vectors stay as they are)
    return Object.freeze({ arch, embed, outputNorm, output, layers: withLayers ? layers : undefined, bytes: k.heap.usedBytes - before });
  } catch (e) {
    for (const p of pending) releaseMat(k, p.mat); // a failed load leaves the heap as it found it
    throw e;
  }
}

/** One routed expert's gate/up/down from its verified object. */
export async function loadExpert(k: Kernels, source: ObjectSource, manifest: Manifest, layer: number, expert: number): Promise<ExpertWeights> {
  const { entries, bytes } = await readExpert(source, manifest, layer, expert);
  return uploadExpert(k, entries, bytes);
}

/** One expert's checked entries and its verified object: what the Worker puts in its heap and the backend on its device. */
export async function readExpert(source: ObjectSource, manifest: Manifest, layer: number, expert: number): Promise<{ entries: ExpertEntries; bytes: Uint8Array }> {
  const entries = expertEntries(manifest, layer, expert); // before the read: a bad entry fails without fetching megabytes
  return { entries, bytes: await readVerified(source, manifest, objectNames.expert(layer, expert)) };
}

/** An expert's three matrices from its object's bytes into the heap (the Worker, and each thread of the backend's cpu device). */
export function uploadExpert(k: Kernels, entries: ExpertEntries, object: Uint8Array): ExpertWeights {
  const mats: Mat[] = [];
  try {
    for (const entry of [entries.gate, entries.up, entries.down]) mats.push(uploadMat(k, entry, object));
  } catch (e) {
    for (const m of mats) releaseMat(k, m); // a failed load must not leave heap behind
    throw e;
  }
  for (const m of mats) k.packWeights?.(m);
  const [gate, up, down] = mats;
  return { gate, up, down };
}

/** Heap bytes of one expert's three matrices (values plus f32 scales). */
export function expertBytes(e: ExpertWeights): number {
  return [e.gate, e.up, e.down].reduce((s, m) => s + memoryBytes(m.dtype, m.rows * m.cols), 0);
}

export function releaseExpert(k: Kernels, e: ExpertWeights): void {
  for (const m of [e.gate, e.up, e.down]) releaseMat(k, m);
}

/** Give every weight's heap memory back (model replaced or dropped). */
export function releaseWeights(k: Kernels, w: ModelWeights): void {
  releaseTrunk(k, w);
  for (const row of w.experts) for (const e of row) if (e) releaseExpert(k, e);
}

export function releaseHead(k: Kernels, h: { embed: Mat; output: Mat }): void {
  releaseMat(k, h.embed);
  if (h.output !== h.embed) releaseMat(k, h.output);
}

export function releaseTrunk(k: Kernels, w: TrunkWeights): void {
  const all: (Mat | Vec | undefined)[] = [w.embed, w.outputNorm, w.arch.tieWordEmbeddings ? undefined : w.output];
  for (const L of w.layers) {
    all.push(L.attnNorm, L.q, L.k, L.v, L.o, L.qBias, L.kBias, L.vBias, L.qNorm, L.kNorm, L.ffnNorm, L.router, L.sharedGate);
    if (L.shared) all.push(L.shared.gate, L.shared.up, L.shared.down);
  }
  for (const m of all) if (m) releaseMat(k, m);
}

// The model's weights resident in the kernel heap, loaded from verified objects (trunk + chosen experts).
// Loaded once per isolate, read-only afterwards; replaced only as a whole.
import { objectNames, tensorNames, type Architecture, type Manifest, type TensorEntry } from '../format/manifest';
import { readVerified, type ObjectSource } from '../format/source';
import type { Kernels, Mat } from '../kernels/types';
import { releaseMat, uploadMat, uploadVec, type Vec } from './weights';

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
  readonly embed: Mat; // (vocab, H)
  readonly outputNorm: Vec;
  readonly output: Mat; // (vocab, H); the embedding itself when tied
  readonly layers: readonly LayerWeights[];
  /** experts[layer][expert], undefined where the expert is not resident here */
  readonly experts: readonly (readonly (ExpertWeights | undefined)[])[];
  /** Bytes of heap the weights occupy. */
  readonly bytes: number;
}

/** Which experts to load: all of them, or a per-layer list. */
export type ExpertSelection = 'all' | ReadonlyMap<number, readonly number[]>;

export async function loadWeights(k: Kernels, source: ObjectSource, manifest: Manifest, experts: ExpertSelection = 'all'): Promise<ModelWeights> {
  const arch = manifest.architecture;
  const before = k.heap.usedBytes;
  const objects = new Map<string, Uint8Array>();
  const bytesOf = async (name: string) => {
    let b = objects.get(name);
    if (!b) {
      b = await readVerified(source, manifest, name);
      objects.set(name, b);
    }
    return b;
  };
  const entry = (name: string): TensorEntry => {
    const e = manifest.tensors[name];
    if (!e) throw new Error(`manifest has no tensor ${name}`);
    return e;
  };
  const mat = async (name: string) => uploadMat(k, entry(name), await bytesOf(entry(name).object));
  const vec = async (name: string) => uploadVec(k, entry(name), await bytesOf(entry(name).object));
  const optVec = async (name: string) => (manifest.tensors[name] ? vec(name) : undefined);
  const t = tensorNames;

  const embed = await mat(t.tokenEmbedding);
  const outputNorm = await vec(t.outputNorm);
  const output = arch.tieWordEmbeddings ? embed : await mat(t.output);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < arch.numLayers; l++) {
    layers.push({
      attnNorm: await vec(t.attnNorm(l)),
      q: await mat(t.attnQ(l)),
      k: await mat(t.attnK(l)),
      v: await mat(t.attnV(l)),
      o: await mat(t.attnOutput(l)),
      qBias: await optVec(t.attnQBias(l)),
      kBias: await optVec(t.attnKBias(l)),
      vBias: await optVec(t.attnVBias(l)),
      qNorm: await optVec(t.attnQNorm(l)),
      kNorm: await optVec(t.attnKNorm(l)),
      ffnNorm: await vec(t.ffnNorm(l)),
      router: await mat(t.router(l)),
      shared: arch.sharedExpertFfnSize > 0
        ? { gate: await mat(t.sharedGate(l)), up: await mat(t.sharedUp(l)), down: await mat(t.sharedDown(l)) }
        : undefined,
      sharedGate: arch.sharedExpertGate ? await mat(t.sharedExpertGate(l)) : undefined,
    });
  }
  objects.clear(); // trunk bytes are in the heap now; let the copy go before experts arrive

  const resident: (ExpertWeights | undefined)[][] = [];
  for (let l = 0; l < arch.numLayers; l++) {
    const row: (ExpertWeights | undefined)[] = new Array(arch.numExperts).fill(undefined);
    const wanted = experts === 'all' ? [...row.keys()] : (experts.get(l) ?? []);
    for (const e of wanted) {
      const bytes = await readVerified(source, manifest, objectNames.expert(l, e));
      row[e] = {
        gate: uploadMat(k, entry(t.expertGate(l, e)), bytes),
        up: uploadMat(k, entry(t.expertUp(l, e)), bytes),
        down: uploadMat(k, entry(t.expertDown(l, e)), bytes),
      };
    }
    resident.push(row);
  }
  return Object.freeze({ arch, embed, outputNorm, output, layers, experts: resident, bytes: k.heap.usedBytes - before });
}

/** Give every weight's heap memory back (model replaced or dropped). */
export function releaseWeights(k: Kernels, w: ModelWeights): void {
  const all: (Mat | Vec | undefined)[] = [w.embed, w.outputNorm, w.arch.tieWordEmbeddings ? undefined : w.output];
  for (const L of w.layers) {
    all.push(L.attnNorm, L.q, L.k, L.v, L.o, L.qBias, L.kBias, L.vBias, L.qNorm, L.kNorm, L.ffnNorm, L.router, L.sharedGate);
    if (L.shared) all.push(L.shared.gate, L.shared.up, L.shared.down);
  }
  for (const row of w.experts) for (const e of row) if (e) all.push(e.gate, e.up, e.down);
  for (const m of all) if (m) releaseMat(k, m);
}

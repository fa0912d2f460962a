// Writes a model folder with fewer experts per layer: trunk tensors copied byte for byte except the routers
// (rows of the kept experts, or the merged fit), kept experts renumbered 0..n-1 (their objects copied as they are
// unless something merged into them: then re-encoded in the model's expert dtype), tokenizer files copied, and a
// new manifest (numExperts, objects, SHA-256 digests) written last, as `convert` does, so a folder is whole or absent.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sha256Hex } from '../../src/format/digest';
import { expertEntries, MANIFEST_FORMAT, objectNames, parseManifest, tensorNames, type Manifest, type TensorEntry } from '../../src/format/manifest';
import { decodeTensor, encodeTensor } from '../../src/format/quant';
import { matrixOf, shardOf } from '../../src/format/tensor-layout';
import type { ExpertFloats } from '../../src/merge/combine';
import { readVerified, type ObjectSource } from '../../src/store/source';
import { ObjectPacker } from '../convert/pack';

export interface ReducedModel {
  name: string;
  /** kept[l] = original expert ids, ascending; new id = index */
  kept: number[][];
  /** routers[l]: (kept[l].length, H) f32 */
  routers: Float32Array[];
  /** `${layer}/${newId}` -> the expert's new weights (absent: copied as it is) */
  rewritten: ReadonlyMap<string, ExpertFloats>;
}

/** An expert's weights as floats (dequantized from its object). */
export async function readExpertFloats(source: ObjectSource, manifest: Manifest, layer: number, expert: number): Promise<ExpertFloats> {
  const entries = expertEntries(manifest, layer, expert);
  const bytes = await readVerified(source, manifest, objectNames.expert(layer, expert));
  const floats = (e: TensorEntry) => {
    const { dtype, rows, cols } = matrixOf(e);
    return decodeTensor(dtype, shardOf(e, bytes), rows * cols);
  };
  return { gate: floats(entries.gate), up: floats(entries.up), down: floats(entries.down) };
}

/** One router as floats (its entry's dtype decoded). */
export function routerFloats(manifest: Manifest, trunk: Uint8Array, layer: number): Float32Array {
  const e = manifest.tensors[tensorNames.router(layer)];
  if (!e) throw new Error(`the model has no router tensor for layer ${layer}`);
  const { dtype, rows, cols } = matrixOf(e);
  return decodeTensor(dtype, shardOf(e, trunk), rows * cols);
}

export async function writeReducedModel(source: ObjectSource, manifest: Manifest, outDir: string, m: ReducedModel): Promise<Manifest> {
  const a = manifest.architecture;
  const numExperts = m.kept[0].length;
  await mkdir(outDir, { recursive: true });
  await rm(join(outDir, objectNames.manifest), { force: true }); // a folder without a manifest is no model
  const tensors: Record<string, TensorEntry> = {};
  const objects: Manifest['objects'] = {};
  const put = async (name: string, bytes: Uint8Array) => {
    const path = join(outDir, ...name.split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
    objects[name] = { bytes: bytes.length, sha256: await sha256Hex(bytes) };
  };

  // trunk.bin: every tensor in its order, the routers replaced
  const trunk = await readVerified(source, manifest, objectNames.trunk);
  const routerOf = new Map(Array.from({ length: a.numLayers }, (_, l) => [tensorNames.router(l), l] as const));
  const packer = new ObjectPacker();
  const inTrunk = Object.entries(manifest.tensors).filter(([, e]) => e.object === objectNames.trunk).sort(([, x], [, y]) => x.offset - y.offset);
  for (const [name, e] of inTrunk) {
    const l = routerOf.get(name);
    const bytes = l === undefined ? shardOf(e, trunk) : encodeTensor(e.dtype, m.routers[l]);
    const shape = l === undefined ? e.shape : [numExperts, a.hiddenSize];
    tensors[name] = { object: objectNames.trunk, offset: packer.add(bytes), bytes: bytes.length, dtype: e.dtype, shape };
  }
  await put(objectNames.trunk, packer.finish());

  // experts: kept ones renumbered; copied verbatim unless rewritten
  for (let l = 0; l < a.numLayers; l++) {
    for (const [i, orig] of m.kept[l].entries()) {
      const entries = expertEntries(manifest, l, orig);
      const names = [tensorNames.expertGate, tensorNames.expertUp, tensorNames.expertDown];
      const parts = [entries.gate, entries.up, entries.down];
      const object = objectNames.expert(l, i);
      const w = m.rewritten.get(`${l}/${i}`);
      if (!w) {
        await put(object, await readVerified(source, manifest, objectNames.expert(l, orig)));
        parts.forEach((e, j) => (tensors[names[j](l, i)] = { ...e, object }));
      } else {
        const p = new ObjectPacker();
        const floats = [w.gate, w.up, w.down];
        const order = [0, 1, 2].sort((x, y) => parts[x].offset - parts[y].offset);
        for (const j of order) {
          const bytes = encodeTensor(parts[j].dtype, floats[j]);
          tensors[names[j](l, i)] = { object, offset: p.add(bytes), bytes: bytes.length, dtype: parts[j].dtype, shape: parts[j].shape };
        }
        await put(object, p.finish());
      }
    }
  }

  // everything else the manifest lists (tokenizer files) as it is
  for (const name of Object.keys(manifest.objects)) {
    if (name === objectNames.trunk || name.startsWith('experts/')) continue;
    await put(name, await readVerified(source, manifest, name));
  }

  const out = parseManifest({ ...manifest, format: MANIFEST_FORMAT, name: m.name, architecture: { ...a, numExperts }, objects, tensors } satisfies Manifest);
  await writeFile(join(outDir, objectNames.manifest), JSON.stringify(out, null, 2) + '\n');
  return out;
}

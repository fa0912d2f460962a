// An expert shard's model: the manifest, the model tag and the experts (and maybe the head) its entry of
// shard-layout.json gives it, read from R2 with the same digest checks as every other object and uploaded into its
// kernels. No attention, no KV cache: a shard's isolate holds experts and one call's scratch.
import { forEachLimited } from '../common/for-each-limited';
import { tensorNames, type Manifest } from '../format/manifest';
import type { Kernels, Mat } from '../kernels/types';
import { expertBytes, loadExpert, loadHead, releaseExpert, releaseHead, type ExpertWeights } from '../engine/model';
import { activationDTypeFor, type ActDType } from '../protocol/activations';
import { readTaggedManifest, type ObjectSource } from '../store/source';
import { ShardLayoutError } from './layout';
import { readShardLayout } from './read-layout';

export interface ShardSlice {
  readonly manifest: Manifest;
  readonly tag: Uint8Array;
  /** this shard's binding name in the layout */
  readonly binding: string;
  /** experts[layer][expert], present where this shard holds it */
  readonly experts: readonly (readonly (ExpertWeights | undefined)[])[];
  readonly count: number;
  /** heap bytes of its experts */
  readonly bytes: number;
  /** the activation dtype its callers send (q8_0 for quantized experts) */
  readonly actDType: ActDType;
  /** the embedding and output head, when the layout gives it this shard */
  readonly head: { readonly embed: Mat; readonly output: Mat } | null;
}

/** Objects read at once: R2's latency hides behind parallel reads; 6 is the connection limit of one request. */
const CONCURRENCY = 6;

export async function loadShardSlice(k: Kernels, source: ObjectSource, layoutName: string, binding: string): Promise<ShardSlice> {
  const { manifest, tag } = await readTaggedManifest(source);
  const layout = await readShardLayout(source, layoutName, manifest);
  const index = layout.doc.shards.findIndex((s) => s.binding === binding);
  if (index < 0) throw new ShardLayoutError(`no shard named ${binding} (SHARD) in ${layoutName}; it has ${layout.doc.shards.map((s) => s.binding).join(', ') || 'none'}`);
  const a = manifest.architecture;
  const experts: (ExpertWeights | undefined)[][] = Array.from({ length: a.numLayers }, () => new Array<ExpertWeights | undefined>(a.numExperts));
  const todo = layout.slices[index].flatMap((row, l) => row.map((e) => [l, e] as const));
  const head = layout.headShard === index ? await loadHead(k, source, manifest) : null;
  try {
    await forEachLimited(todo, CONCURRENCY, async ([l, e]) => {
      experts[l][e] = await loadExpert(k, source, manifest, l, e);
    });
  } catch (e) {
    for (const row of experts) for (const w of row) if (w) releaseExpert(k, w); // a failed load leaves the heap as it found it
    if (head) releaseHead(k, head);
    throw e;
  }
  let bytes = head?.bytes ?? 0;
  for (const row of experts) for (const w of row) if (w) bytes += expertBytes(w);
  return Object.freeze({
    manifest,
    tag,
    binding,
    experts,
    count: todo.length,
    bytes,
    actDType: activationDTypeFor(manifest.tensors[tensorNames.expertGate(0, 0)]!.dtype),
    head,
  });
}

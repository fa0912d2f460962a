// The prefill call's forward pass on the webgpu device: the trunk's layers (attention, norms, router, shared expert)
// in WGSL beside the device's experts (WebGpuTrunk), the KV cache kept on the GPU in the Worker's type, and read
// back layer by layer as the frames' rows. Only the token embedding goes into the backend's WASM heap (a lookup; the
// Worker finishes the step with its own head). One prompt at a time per KV-cache type: the trunk's cache and scratch
// are one.
import type { KvCacheType } from '../../src/engine/kv-cache';
import { uploadMat } from '../../src/engine/weights';
import { tensorEntry, tensorNames, type Manifest, type TensorEntry } from '../../src/format/manifest';
import type { Kernels, Mat } from '../../src/kernels/types';
import { hostTensor, type HostTensor } from '../../src/format/tensor-layout';
import { readVerified, type ObjectSource } from '../../src/store/source';
import type { WebGpuExpertDevice } from '../devices/webgpu/expert-device';
import { WebGpuTrunk, type CacheRows, type LayerWeights, type PhaseMs } from '../devices/webgpu/trunk';

export class GpuTrunk {
  private readonly trunks = new Map<KvCacheType, WebGpuTrunk>();
  private queue: Promise<unknown> = Promise.resolve();
  /** when set, each prefill's per-phase wall ms accumulate here (bench/gpu/prefill-phases.ts) */
  phaseMs: PhaseMs | null = null;
  /** positions a trunk pass takes at once (WebGpuTrunk's maxChunk; its default when unset); set before the first prefill */
  maxChunk: number | undefined = undefined;

  private constructor(
    private readonly device: WebGpuExpertDevice,
    private readonly manifest: Manifest,
    private readonly layers: LayerWeights[],
    /** the token embedding in the heap of the `kernels` given to load() */
    readonly embedding: Mat,
  ) {}

  /**
   * The trunk's tensors from their verified objects, each object read once: the layers as host tensors for the GPU
   * (ggml's layout), the token embedding into `kernels`' heap.
   */
  static async load(source: ObjectSource, manifest: Manifest, device: WebGpuExpertDevice, kernels: Kernels): Promise<GpuTrunk> {
    const objects = new Map<string, Uint8Array>();
    const object = async (name: string): Promise<{ entry: TensorEntry; bytes: Uint8Array }> => {
      const entry = tensorEntry(manifest, name);
      let bytes = objects.get(entry.object);
      if (!bytes) objects.set(entry.object, (bytes = await readVerified(source, manifest, entry.object)));
      return { entry, bytes };
    };
    const tensor = async (name: string): Promise<HostTensor> => {
      const { entry, bytes } = await object(name);
      return hostTensor(entry, bytes);
    };
    const optional = async (on: boolean, name: string) => (on ? tensor(name) : undefined);
    const a = manifest.architecture;
    const t = tensorNames;
    const layers: LayerWeights[] = [];
    for (let l = 0; l < a.numLayers; l++) {
      layers.push({
        attnNorm: await tensor(t.attnNorm(l)), q: await tensor(t.attnQ(l)), k: await tensor(t.attnK(l)), v: await tensor(t.attnV(l)), o: await tensor(t.attnOutput(l)),
        qBias: await optional(a.qkvBias, t.attnQBias(l)), kBias: await optional(a.qkvBias, t.attnKBias(l)), vBias: await optional(a.qkvBias, t.attnVBias(l)),
        qNorm: await optional(a.qkNorm !== 'none', t.attnQNorm(l)), kNorm: await optional(a.qkNorm !== 'none', t.attnKNorm(l)),
        ffnNorm: await tensor(t.ffnNorm(l)), router: await tensor(t.router(l)),
        shared: a.sharedExpertFfnSize > 0 ? { gate: await tensor(t.sharedGate(l)), up: await tensor(t.sharedUp(l)), down: await tensor(t.sharedDown(l)) } : undefined,
        sharedGate: await optional(a.sharedExpertGate, t.sharedExpertGate(l)),
      });
    }
    const embedding = await object(t.tokenEmbedding);
    return new GpuTrunk(device, manifest, layers, uploadMat(kernels, embedding.entry, embedding.bytes));
  }

  /**
   * x (n, H): the embedded prompt. Every layer's K and V rows go to `onLayer` (runs of at most 64 positions, as the
   * trunk computed them) before the next layer starts. Returns the residual rows after the last layer and the picks.
   */
  prefill(x: Float32Array, kvType: KvCacheType, onLayer: (layer: number, k: CacheRows[], v: CacheRows[]) => Promise<void>): Promise<{ x: Float32Array; counts: number[][] }> {
    const run = this.queue.then(async () => {
      const a = this.manifest.architecture;
      let trunk = this.trunks.get(kvType);
      if (!trunk) this.trunks.set(kvType, (trunk = new WebGpuTrunk(this.device.gpuKernels, a, this.layers, { capacity: a.contextLength, kvType, maxChunk: this.maxChunk })));
      trunk.reset();
      const counts = Array.from({ length: a.numLayers }, () => new Array<number>(a.numExperts).fill(0));
      trunk.routeCounts = counts;
      trunk.phaseMs = this.phaseMs;
      try {
        const out = await trunk.prefill(x, 0, (l, e) => this.device.tensors(l, e), onLayer);
        return { x: out, counts };
      } finally {
        trunk.routeCounts = null;
        trunk.phaseMs = null;
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  destroy(): void {
    for (const t of this.trunks.values()) t.destroy();
    this.trunks.clear();
  }
}

// The backend's forward pass hands each layer's routed tokens to the device that holds every expert: the engine's
// ExpertExecutor seam over ExpertDevice. On the cpu device the groups of different experts run on its threads at
// once (the prefill's work split by expert), with the Worker's own kernels, so values are the Worker's bit for bit.
// Rows go as the Worker sends a cold expert's (q8_0 blocks for quantized experts): the webgpu device, which widens
// them to f32, then sees ggml's quantized activations, as the CPU kernels do.
import type { ExpertBatch, ExpertExecutor } from '../../src/engine/experts';
import type { Kernels } from '../../src/kernels/types';
import { encodeRows, type ActDType } from '../../src/protocol/activations';
import { groupPairs } from '../../src/protocol/expert-call';
import type { ExpertDevice, ExpertGroup } from '../devices/device';

export class DeviceExperts implements ExpertExecutor {
  /** the router picks of the batches run so far: counts[layer][expert] (one executor per prefill) */
  readonly counts: number[][];

  constructor(
    private readonly k: Kernels,
    private readonly device: ExpertDevice,
    private readonly hidden: number,
    private readonly topK: number,
    numLayers: number,
    numExperts: number,
    private readonly actDType: ActDType,
  ) {
    this.counts = Array.from({ length: numLayers }, () => new Array<number>(numExperts).fill(0));
  }

  async run(b: ExpertBatch): Promise<void> {
    const H = this.hidden;
    for (const slots of b.routes) for (const r of slots) this.counts[b.layer][r.expert]++;
    const jobs = b.routes.flatMap((slots, token) => slots.map((r, slot) => ({ token, slot, expert: r.expert })));
    const byExpert = groupPairs(jobs.length, (i) => jobs[i].expert);
    const x = this.k.heap.f32(b.x, b.nTok * H);
    const groups: ExpertGroup[] = byExpert.map(({ key, members }) => ({
      expert: key,
      x: encodeRows(x, H, members.map((m) => jobs[m].token), this.actDType),
      n: members.length,
    }));
    const ys = await this.device.run(b.layer, groups);
    // the heap may have grown while the device worked: view it afresh
    const out = this.k.heap.f32(b.out, b.nTok * this.topK * H);
    byExpert.forEach(({ members }, g) => members.forEach((m, i) => out.set(ys[g].subarray(i * H, i * H + H), (jobs[m].token * this.topK + jobs[m].slot) * H)));
  }
}

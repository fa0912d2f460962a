// Mixed precision's quality cost, measured: an expert executor that computes the experts a plan keeps at
// q4_0 from q4_0 copies (re-quantized from the model's own expert objects, as an edge would have to) and
// every other expert as stored, so held-out perplexity shows what the smaller hot experts cost.
import type { ExpertBatch, ExpertExecutor } from '../../src/engine/experts';
import { LocalExperts } from '../../src/engine/experts';
import type { LocalModel } from '../../src/engine/load';
import { releaseExpert, withExperts, type ExpertWeights } from '../../src/engine/model';
import { uploadMat } from '../../src/engine/weights';
import { objectNames, tensorNames } from '../../src/format/manifest';
import { decodeTensor, encodeTensor } from '../../src/format/quant';
import { readVerified, type ObjectSource } from '../../src/store/source';
import type { Mat } from '../../src/kernels/types';

export class MixedPrecisionExperts implements ExpertExecutor {
  private constructor(private readonly full: LocalExperts, private readonly q4: LocalExperts, private readonly q4Set: ReadonlySet<string>, private readonly owned: ExpertWeights[], private readonly model: LocalModel) {}

  /** q4[l] = experts of layer l to run at q4_0. */
  static async create(model: LocalModel, source: ObjectSource, q4: readonly (readonly number[])[]): Promise<MixedPrecisionExperts> {
    if (!(model.expertExecutor instanceof LocalExperts)) throw new Error('mixed precision is measured on the all-local model');
    const k = model.kernels;
    const owned: ExpertWeights[] = [];
    const rows = model.weights.experts.map((row) => [...row]);
    const set = new Set<string>();
    for (const [l, experts] of q4.entries()) {
      for (const e of experts) {
        const bytes = await readVerified(source, model.manifest, objectNames.expert(l, e));
        const mat = (name: string): Mat => {
          const t = model.manifest.tensors[name]!;
          const n = t.shape.reduce((a, b) => a * b, 1);
          const values = decodeTensor(t.dtype, bytes.subarray(t.offset, t.offset + t.bytes), n);
          const enc = encodeTensor('q4_0', values);
          return uploadMat(k, { object: t.object, offset: 0, bytes: enc.length, dtype: 'q4_0', shape: t.shape }, enc);
        };
        const w = { gate: mat(tensorNames.expertGate(l, e)), up: mat(tensorNames.expertUp(l, e)), down: mat(tensorNames.expertDown(l, e)) };
        owned.push(w);
        rows[l][e] = w;
        set.add(`${l}/${e}`);
      }
    }
    return new MixedPrecisionExperts(model.expertExecutor, new LocalExperts(k, withExperts(model.weights, rows)), set, owned, model);
  }

  run(b: ExpertBatch): void {
    // each executor fills only the (token, slot) cells of its own jobs
    const jobs = b.routes.flatMap((slots, token) => slots.map((r, slot) => ({ token, slot, expert: r.expert })));
    const isQ4 = (j: { expert: number }) => this.q4Set.has(`${b.layer}/${j.expert}`);
    this.q4.runJobs(b, jobs.filter(isQ4));
    this.full.runJobs(b, jobs.filter((j) => !isQ4(j)));
  }

  release(): void {
    for (const w of this.owned) releaseExpert(this.model.kernels, w);
  }
}

// The calibration side of merge-experts: runs calibration prompts through the engine and keeps, per layer, an
// evenly strided sample of the router inputs (normalised hidden states) with the experts each token picked;
// then computes experts' outputs on those inputs with the engine's own FFN kernels (what similarity compares).
import { Sequence } from '../../src/engine/forward';
import { LocalExperts, type ExpertBatch, type ExpertExecutor } from '../../src/engine/experts';
import type { LocalModel } from '../../src/engine/load';
import { prefill } from '../../src/engine/prefill';
import type { Prompt } from '../profile';

/** One layer's sample: inputs X (n, H); picks[t] = the experts token t was routed to, weights[t] their routing weights. */
export interface LayerSample {
  X: Float32Array;
  picks: number[][];
  weights: number[][];
}

/** Copies every `stride`-th token's router input (up to `cap` per layer), then lets `inner` run the batch. */
class SamplingExecutor implements ExpertExecutor {
  readonly seen: number[];
  readonly rows: Float32Array[][];
  readonly picks: number[][][];
  readonly weights: number[][][];

  constructor(private readonly model: LocalModel, private readonly stride: number, private readonly cap: number) {
    const L = model.manifest.architecture.numLayers;
    this.seen = new Array<number>(L).fill(0);
    this.rows = Array.from({ length: L }, () => []);
    this.picks = Array.from({ length: L }, () => []);
    this.weights = Array.from({ length: L }, () => []);
  }

  run(b: ExpertBatch): Promise<void> | void {
    const H = this.model.manifest.architecture.hiddenSize;
    const x = this.model.kernels.heap.f32(b.x, b.nTok * H);
    for (let t = 0; t < b.nTok; t++) {
      const g = this.seen[b.layer]++;
      if (g % this.stride !== 0 || this.rows[b.layer].length >= this.cap) continue;
      this.rows[b.layer].push(x.slice(t * H, t * H + H));
      this.picks[b.layer].push(b.routes[t].map((r) => r.expert));
      this.weights[b.layer].push(b.routes[t].map((r) => r.weight));
    }
    return this.model.expertExecutor.run(b);
  }
}

/** The prompts' tokens as `profile` prefills them (BOS as configured), cut to the context. */
export function calibrationTokens(model: LocalModel, prompts: readonly Prompt[]): number[][] {
  return prompts.map((p) => model.encode(p.text).slice(0, model.contextLength));
}

/** Router inputs of about `cap` tokens per layer, spread evenly over all the calibration sequences' tokens. */
export async function sampleRouterInputs(model: LocalModel, sequences: readonly (readonly number[])[], cap: number): Promise<LayerSample[]> {
  const vocab = model.manifest.architecture.vocabSize;
  const tokenized = sequences.map((t) => t.slice(0, model.contextLength)).filter((t) => t.length > 0);
  for (const t of tokenized) for (const id of t) if (!(Number.isInteger(id) && id >= 0 && id < vocab)) throw new Error(`calibration token id ${id} is outside the vocabulary (0-${vocab - 1})`);
  const total = tokenized.reduce((s, t) => s + t.length, 0);
  if (total === 0) throw new Error('the calibration prompts hold no tokens');
  const sampler = new SamplingExecutor(model, Math.max(1, Math.floor(total / cap)), cap);
  for (const tokens of tokenized) {
    const seq = new Sequence(model.kernels, model.weights, tokens.length);
    try {
      await prefill(model.kernels, seq, sampler, tokens, { logits: 'last' });
    } finally {
      seq.release();
    }
  }
  const H = model.manifest.architecture.hiddenSize;
  return sampler.rows.map((rows, l) => {
    const X = new Float32Array(rows.length * H);
    rows.forEach((r, i) => X.set(r, i * H));
    return { X, picks: sampler.picks[l], weights: sampler.weights[l] };
  });
}

/** out (n, H): expert `e` of `layer` applied to the rows `idx` of X (the engine's FFN, unweighted). */
export function expertOutputs(model: LocalModel, layer: number, expert: number, X: Float32Array, idx: readonly number[]): Float32Array {
  const a = model.manifest.architecture;
  const H = a.hiddenSize;
  const K = a.topK;
  const heap = model.kernels.heap;
  const n = idx.length;
  const x = heap.alloc(Math.max(1, n) * H * 4);
  const out = heap.alloc(Math.max(1, n) * K * H * 4);
  const scores = heap.alloc(Math.max(1, n) * a.numExperts * 4);
  try {
    const xs = heap.f32(x, n * H);
    idx.forEach((t, i) => xs.set(X.subarray(t * H, t * H + H), i * H));
    const routes = idx.map(() => Array.from({ length: K }, () => ({ expert, weight: 0 })));
    const batch: ExpertBatch = { layer, x, nTok: n, routes, scores, out };
    new LocalExperts(model.kernels, model.weights).runJobs(batch, idx.map((_, token) => ({ token, slot: 0, expert })));
    const o = heap.f32(out, n * K * H);
    const res = new Float32Array(n * H);
    for (let i = 0; i < n; i++) res.set(o.subarray(i * K * H, i * K * H + H), i * H);
    return res;
  } finally {
    heap.release(scores);
    heap.release(out);
    heap.release(x);
  }
}

/** Mean cosine similarity of paired rows of a and b (n, H). */
export function meanCosine(a: Float32Array, b: Float32Array, H: number): number {
  const n = a.length / H;
  if (n === 0) return 0;
  let sum = 0;
  for (let t = 0; t < n; t++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let h = 0; h < H; h++) {
      const x = a[t * H + h];
      const y = b[t * H + h];
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    sum += aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
  }
  return sum / n;
}

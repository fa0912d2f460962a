// onnxruntime-web (wasm backend, 1 thread) running the expert FFN as a peer: fp32 MatMul, MatMulNBits (4-bit,
// block 32, int8 activations) and DynamicQuantizeMatMul (int8). Sessions hold copies of the weights whose total
// exceeds the last-level cache and are rotated, as bench/kernels/ffn.ts rotates ours.
import * as ort from 'onnxruntime-web';
import type { Clock, Pass } from '../matvec/measure';
import { timePairAsync, type FfnShape, type PairResult } from './ffn';
import { ffnModel, ortWeightBytes, type OrtFfnKind } from './onnx-ffn';

export const ORT_KINDS: readonly OrtFfnKind[] = ['fp32', 'nbits4', 'dqmm8'];
export const ORT_OP: Record<OrtFfnKind, string> = {
  fp32: 'MatMul fp32',
  nbits4: 'MatMulNBits 4-bit',
  nbits8: 'MatMulNBits 8-bit',
  dqmm8: 'DynamicQuantizeMatMul int8',
};
const MAX_SESSIONS = 48;

export function ortVersion(): string {
  return ort.env.versions.web ?? 'unknown';
}

export interface OrtPool {
  sessions: ort.InferenceSession[];
  weightBytes: number;
  release(): Promise<void>;
}

export async function prepareOrtPool(kind: OrtFfnKind, s: FfnShape, poolBytes: number): Promise<OrtPool> {
  ort.env.wasm.numThreads = 1;
  const weightBytes = ortWeightBytes(kind, s.hidden, s.inter);
  const n = Math.min(MAX_SESSIONS, Math.max(2, Math.ceil(poolBytes / weightBytes)));
  const sessions: ort.InferenceSession[] = [];
  for (let i = 0; i < n; i++) {
    sessions.push(await ort.InferenceSession.create(ffnModel(kind, s.hidden, s.inter, i + 1), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' }));
  }
  return { sessions, weightBytes, release: async () => { for (const x of sessions) await x.release(); } };
}

/** Rounds of alternating stream / ORT slices; GB/s counts the weight bytes the op reads (its own format). */
export async function measureOrt(pool: OrtPool, s: FfnShape, batch: number, stream: Pass, opts: { rounds: number; minMs: number; slices: number }, now: Clock): Promise<PairResult> {
  const x = new ort.Tensor('float32', Float32Array.from({ length: batch * s.hidden }, (_, i) => Math.sin(i * 0.37) * 1.5), [batch, s.hidden]);
  let next = 0;
  const call = async () => {
    await pool.sessions[next].run({ X: x });
    next = (next + 1) % pool.sessions.length;
    return pool.weightBytes;
  };
  for (let i = 0; i < pool.sessions.length; i++) await call(); // warm-up: first run of each session plans its kernels
  const out: PairResult = { gbps: [], streamGbps: [] };
  for (let r = 0; r < opts.rounds; r++) {
    const [sg, g] = await timePairAsync(stream, call, opts.minMs, opts.slices, now);
    out.streamGbps.push(sg);
    out.gbps.push(g);
  }
  return out;
}

// Kernel benchmark: the fused expert FFN at batch 1/4/16/64 for the default model's and granite-3.0-1b-a400m's
// expert shapes, in q8_0 and q4_0: moe-edge's WASM executors (GB/s of weights and ratio to the v128 streaming
// read of the same rounds), onnxruntime-web's wasm backend and llama.cpp (node-llama-cpp) as peers.
import { join } from 'node:path';
import { loadNodeKernelModules } from '../../src/kernels/load-node';
import { availableExecutors, makeKernels, makeStreamReader } from '../matvec/executors';
import { median, prepareStream, streamPass, type Executor, type Quant } from '../matvec/measure';
import { measureFfn, type FfnShape, type PairResult } from './ffn';
import { llamaExpertBytes, measureLlamaFfn, prepareLlamaPair } from './llama-ffn';
import { measureOrt, ORT_KINDS, ORT_OP, prepareOrtPool } from './ort';
import { measureWllamaFfn } from './wllama-ffn';
import { wllamaUnavailable } from '../peers/wllama';

export const BATCHES = [1, 4, 16, 64] as const;
export const QUANTS: readonly Quant[] = ['q8_0', 'q4_0'];

export interface KernelOptions { rounds: number; minMs: number; slices: number; poolBytes: number; streamBytes: number; workDir: string; wllama: boolean }

export interface KernelRecord {
  name: string; // e.g. "expert FFN granite-1b-a400m"
  quant: Quant;
  shape: [number, number]; // [H, I]: gate/up (I, H), down (H, I)
  batch: number;
  runtime: 'node';
  executor: Executor;
  gbps: number; // weight bytes in kernel memory per second (1 GB = 1e9 B), median over rounds
  ratio_to_stream: number; // median over rounds of gbps / streaming-read GB/s of the same round
  stream_gbps: number;
  us_per_call: number; // one FFN call (B tokens)
  ratio_range: [number, number];
}

export interface PeerRecord {
  name: string; // "onnxruntime-web MatMul fp32", "llama.cpp q8_0", ...
  quant: string; // the weights' format in that runtime
  shape: [number, number];
  batch: number;
  gbps: number | null; // the peer's own weight bytes per second (null: not measurable above the noise)
  us_per_call: number | null;
  ratio_to_stream: number | null; // where it was timed against the streaming read
  moe_edge_speedup: number | null; // peer time / moe-edge time for the same shape and batch (q8_0, or q4_0 for 4-bit peers)
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const nullable = (x: number) => (Number.isFinite(x) ? r3(x) : null);

function summarize(p: PairResult, bytes: number) {
  const ratios = p.gbps.map((g, i) => g / p.streamGbps[i]);
  const gbps = median(p.gbps);
  return { gbps: r3(gbps), ratio_to_stream: r3(median(ratios)), stream_gbps: r3(median(p.streamGbps)), us_per_call: r3(bytes / gbps / 1e3), ratio_range: [r3(Math.min(...ratios)), r3(Math.max(...ratios))] as [number, number] };
}

export async function runKernels(shapes: readonly FfnShape[], opts: KernelOptions, log: (s: string) => void): Promise<{ kernels: KernelRecord[]; peers: PeerRecord[] }> {
  const modules = await loadNodeKernelModules();
  const stream = makeStreamReader(modules);
  const streamPtr = prepareStream(stream, opts.streamBytes);
  const now = () => performance.now();
  const kernels: KernelRecord[] = [];
  const peers: PeerRecord[] = [];
  const executors = availableExecutors(modules).filter((e) => e !== 'wasm-scalar');
  const instances = new Map(executors.map((e) => [e, makeKernels(modules, e)])); // one memory per executor
  // ours: the best executor's time per shape/quant/batch, which the peers are compared with
  const best = new Map<string, number>();
  const keyOf = (s: FfnShape, q: Quant, b: number) => `${s.model}/${q}/${b}`;

  for (const s of shapes) {
    const shape: [number, number] = [s.hidden, s.inter];
    for (const quant of QUANTS) {
      for (const executor of executors) {
        const k = instances.get(executor)!;
        for (const batch of BATCHES) {
          const r = measureFfn(k, stream, streamPtr, opts.streamBytes, quant, s, batch, opts, now);
          const rec: KernelRecord = { name: `expert FFN ${s.model}`, quant, shape, batch, runtime: 'node', executor, ...summarize(r, r.expertBytes) };
          kernels.push(rec);
          const key = keyOf(s, quant, batch);
          best.set(key, Math.min(best.get(key) ?? Infinity, rec.us_per_call));
          log(`kernels ${s.model} ${quant} B=${batch} ${executor}: ${rec.gbps} GB/s, ratio ${rec.ratio_to_stream} (stream ${rec.stream_gbps}), ${rec.us_per_call} us`);
        }
      }
    }
    // onnxruntime-web: its weights in its formats; compared with our q8_0 (fp32, int8) or q4_0 (4-bit)
    for (const kind of ORT_KINDS) {
      const pool = await prepareOrtPool(kind, s, opts.poolBytes);
      try {
        for (const batch of BATCHES) {
          const r = await measureOrt(pool, s, batch, streamPass(stream, streamPtr, opts.streamBytes), opts, now);
          const sum = summarize(r, pool.weightBytes);
          const ours = best.get(keyOf(s, kind === 'nbits4' ? 'q4_0' : 'q8_0', batch))!;
          peers.push({ name: `onnxruntime-web ${ORT_OP[kind]}`, quant: kind === 'fp32' ? 'f32' : kind === 'nbits4' ? '4-bit, block 32' : 'int8, per column', shape, batch, gbps: sum.gbps, us_per_call: sum.us_per_call, ratio_to_stream: sum.ratio_to_stream, moe_edge_speedup: r3(sum.us_per_call / ours) });
          log(`peers ${s.model} onnxruntime-web ${ORT_OP[kind]} B=${batch}: ${sum.gbps} GB/s, ${sum.us_per_call} us (moe-edge ${r3(sum.us_per_call / ours)}x faster)`);
        }
      } finally {
        await pool.release();
      }
    }
    // llama.cpp by difference of two synthetic models (see llama-ffn.ts), same block formats
    for (const quant of QUANTS) {
      const pair = await prepareLlamaPair(join(opts.workDir, 'llama-ffn'), s, quant, opts.poolBytes);
      try {
        for (const batch of BATCHES) {
          const r = await measureLlamaFfn(pair, s, quant, batch, opts, now);
          // medians of each model's time, then the difference; null when the expert's share is below the noise
          const diffMs = median(r.msTwo) - median(r.msOne);
          const us = diffMs > 0 ? (diffMs * 1e3) / (pair.layers * pair.extra) : NaN;
          const gbps = llamaExpertBytes(s, quant) / us / 1e3;
          const ours = best.get(keyOf(s, quant, batch))!;
          peers.push({ name: 'llama.cpp (node-llama-cpp, native, 1 thread)', quant, shape, batch, gbps: nullable(gbps), us_per_call: nullable(us), ratio_to_stream: null, moe_edge_speedup: nullable(us / ours) });
          log(`peers ${s.model} llama.cpp ${quant} B=${batch}: ${r3(gbps)} GB/s, ${r3(us)} us (moe-edge ${r3(us / ours)}x), ${pair.layers} layers, ms one/${1 + pair.extra} experts ${r3(median(r.msOne))}/${r3(median(r.msTwo))}, per-round GB/s ${r.gbps.map(r3).join(' ')}`);
        }
      } finally {
        await pair.release();
      }
      // llama.cpp's WASM build (wllama in Chromium): batch 1 only, where decode time isolates the FFN
      if (opts.wllama && !wllamaUnavailable()) {
        const w = await measureWllamaFfn(join(opts.workDir, 'wllama-ffn'), s, quant, opts.poolBytes, opts.rounds);
        const ours = best.get(keyOf(s, quant, 1))!;
        peers.push({ name: 'llama.cpp WASM (wllama, Chromium, 1 thread)', quant, shape, batch: 1, gbps: nullable(w.gbps), us_per_call: nullable(w.us), ratio_to_stream: null, moe_edge_speedup: nullable(w.us / ours) });
        log(`peers ${s.model} wllama ${quant} B=1: ${r3(w.gbps)} GB/s, ${r3(w.us)} us (moe-edge ${r3(w.us / ours)}x), ${w.layers} layers, ms/token one/two ${r3(w.msOne)}/${r3(w.msTwo)}`);
      }
    }
  }
  stream.heap.release(streamPtr);
  return { kernels, peers };
}

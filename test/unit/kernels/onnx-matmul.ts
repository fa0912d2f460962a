// onnxruntime-web as an outside numeric reference: a one-node fp32 ONNX MatMul model, encoded by hand
// (a few protobuf fields of onnx.proto suffice, so no protobuf dependency), run on the 'wasm' provider.
import type * as Ort from 'onnxruntime-web';

import { int, len as msg, str, valueInfo } from '../../../bench/kernels/onnx-proto';

/** ModelProto (ir_version 7, opset 13) of Y (m, n) = X (m, k) @ B (k, n), both inputs. */
export function matmulModel(m: number, k: number, n: number): Uint8Array {
  // NodeProto { input = 1; output = 2; name = 3; op_type = 4 }
  const node = [...str(1, 'X'), ...str(1, 'B'), ...str(2, 'Y'), ...str(3, 'mm'), ...str(4, 'MatMul')];
  // GraphProto { node = 1; name = 2; input = 11; output = 12 }
  const graph = [
    ...msg(1, node), ...str(2, 'g'),
    ...msg(11, valueInfo('X', [m, k])), ...msg(11, valueInfo('B', [k, n])),
    ...msg(12, valueInfo('Y', [m, n])),
  ];
  // ModelProto { ir_version = 1; producer_name = 2; graph = 7; opset_import = 8 { domain = 1; version = 2 } }
  const model = [...int(1, 7), ...str(2, 'moe-edge-test'), ...msg(7, graph), ...msg(8, [...str(1, ''), ...int(2, 13)])];
  return new Uint8Array(model);
}

// Loaded on first use: suites that import the matmul cases without this reference (the WebGPU ones on a GPU
// machine, where bench/gpu/pack.sh leaves onnxruntime-web out) never need the package.
let ortModule: Promise<typeof Ort> | null = null;
const sessions = new Map<string, Promise<Ort.InferenceSession>>();

/**
 * Y (m, n) = X (m, k) @ W^T where W is (n, k) row-major, computed by onnxruntime-web in fp32 on one thread; null
 * only when CONFORMANCE_NO_ORT is set (bench/gpu/device-check.sh, on a machine the package is not carried to).
 */
export async function ortMatmul(x: Float32Array, w: Float32Array, m: number, k: number, n: number): Promise<Float32Array | null> {
  if (process.env.CONFORMANCE_NO_ORT) return null;
  ortModule ??= import('onnxruntime-web').then((mod) => {
    mod.env.wasm.numThreads = 1; // deterministic, no worker threads
    return mod;
  });
  const ort = await ortModule;
  const id = `${m}x${k}x${n}`;
  let s = sessions.get(id);
  if (!s) {
    s = ort.InferenceSession.create(matmulModel(m, k, n), { executionProviders: ['wasm'] });
    sessions.set(id, s);
  }
  const wt = new Float32Array(k * n); // B = W^T
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) wt[c * n + r] = w[r * k + c];
  const out = await (await s).run({ X: new ort.Tensor('float32', x, [m, k]), B: new ort.Tensor('float32', wt, [k, n]) });
  return out.Y.data as Float32Array;
}

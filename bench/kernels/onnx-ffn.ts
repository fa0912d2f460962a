// The expert FFN as an ONNX model for onnxruntime-web, encoded by hand (a few fields of onnx.proto, no
// protobuf dependency): Y (B, H) = down(silu(X gate^T) * (X up^T)) with the weights as initializers, either
// fp32 MatMul or the contrib op com.microsoft.MatMulNBits (block-quantized weights, 4 or 8 bits, block 32).

import { FLOAT, INT8, int, key, len, str, UINT8, valueInfo, varint, type Bytes } from './onnx-proto';
import { concatBytes as concat } from '../../src/common/bytes';

// TensorProto { dims = 1; data_type = 2; name = 8; raw_data = 9 }: raw bytes, little-endian
function initializer(name: string, dims: number[], type: number, raw: Uint8Array): Uint8Array {
  const head = [...dims.flatMap((d) => int(1, d)), ...int(2, type), ...str(8, name)];
  return concat([new Uint8Array(head), new Uint8Array([...key(9, 2), ...varint(raw.length)]), raw]);
}

// AttributeProto { name = 1; i = 3; type = 20 (INT = 2) }
const intAttr = (name: string, v: number): Bytes => [...str(1, name), ...int(3, v), ...int(20, 2)];

// NodeProto { input = 1; output = 2; name = 3; op_type = 4; attribute = 5; domain = 7 }
function node(op: string, inputs: string[], outputs: string[], attrs: Bytes[] = [], domain = ''): Bytes {
  return [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(3, `${op}_${outputs[0]}`), ...str(4, op), ...attrs.flatMap((a) => len(5, a)), ...(domain ? str(7, domain) : [])];
}

function field(n: number, body: Uint8Array): Uint8Array {
  return concat([new Uint8Array([...key(n, 2), ...varint(body.length)]), body]);
}

export type OrtFfnKind = 'fp32' | 'nbits4' | 'nbits8' | 'dqmm8';

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { s = (s ^ (s << 13) ^ (s >>> 17) ^ (s << 5)) >>> 0; out[i] = s & 0xff; }
  return out;
}

/** Bytes of the three weight matrices as the op reads them (fp32 values, or packed quants + f32 scales). */
export function ortWeightBytes(kind: OrtFfnKind, H: number, I: number): number {
  const n = 3 * H * I;
  if (kind === 'dqmm8') return n + 4 * (2 * I + H); // int8 weights, one f32 scale per output column
  return kind === 'fp32' ? n * 4 : n * (kind === 'nbits4' ? 0.5 : 1) + (n / 32) * 4;
}

/**
 * ModelProto (ir 9, opsets ai.onnx 21 + com.microsoft 1) of the FFN over X (B, H), B symbolic. Weights are random with
 * small scales; `accuracyLevel` 4 asks MatMulNBits for int8 activations (its fastest CPU path).
 */
export function ffnModel(kind: OrtFfnKind, H: number, I: number, seed: number, accuracyLevel = 4): Uint8Array {
  const inits: Uint8Array[] = [];
  const nodes: Bytes[] = [];
  const matmul = (x: string, name: string, K: number, N: number, out: string) => {
    if (kind === 'fp32') {
      // MatMul takes W^T (K, N)
      const w = new Float32Array(K * N).map((_, i) => Math.sin(i * 0.61 + seed) * 0.02);
      inits.push(initializer(name, [K, N], FLOAT, new Uint8Array(w.buffer)));
      nodes.push(node('MatMul', [x, name], [out]));
      return;
    }
    if (kind === 'dqmm8') {
      // DynamicQuantizeMatMul: X quantized to uint8 per tensor at run time, W^T (K, N) int8 with per-column scales
      inits.push(initializer(name, [K, N], INT8, randomBytes(K * N, seed + K)));
      const sc = new Float32Array(N).map((_, i) => 0.002 + (i % 17) * 0.0005);
      inits.push(initializer(`${name}_s`, [N], FLOAT, new Uint8Array(sc.buffer)));
      nodes.push(node('DynamicQuantizeMatMul', [x, name, `${name}_s`], [out], [], 'com.microsoft'));
      return;
    }
    const bits = kind === 'nbits4' ? 4 : 8;
    const blocks = K / 32;
    const blob = (32 * bits) / 8;
    // B (N, K/32, blob) uint8, scales (N * K/32) f32; zero point defaults to 2^(bits-1)
    inits.push(initializer(name, [N, blocks, blob], UINT8, randomBytes(N * blocks * blob, seed + K)));
    const sc = new Float32Array(N * blocks).map((_, i) => 0.002 + (i % 17) * 0.0005);
    inits.push(initializer(`${name}_s`, [N * blocks], FLOAT, new Uint8Array(sc.buffer)));
    nodes.push(node('MatMulNBits', [x, name, `${name}_s`], [out], [intAttr('K', K), intAttr('N', N), intAttr('bits', bits), intAttr('block_size', 32), intAttr('accuracy_level', accuracyLevel)], 'com.microsoft'));
  };
  matmul('X', 'Wg', H, I, 'G');
  matmul('X', 'Wu', H, I, 'U');
  nodes.push(node('Sigmoid', ['G'], ['Gs']), node('Mul', ['G', 'Gs'], ['A']), node('Mul', ['A', 'U'], ['P']));
  matmul('P', 'Wd', I, H, 'Y');
  // GraphProto { node = 1; name = 2; initializer = 5; input = 11; output = 12 }
  const graph = concat([
    ...nodes.map((n) => field(1, new Uint8Array(n))),
    new Uint8Array(str(2, 'ffn')),
    ...inits.map((t) => field(5, t)),
    field(11, new Uint8Array(valueInfo('X', ['B', H]))),
    field(12, new Uint8Array(valueInfo('Y', ['B', H]))),
  ]);
  // ModelProto { ir_version = 1; producer_name = 2; graph = 7; opset_import = 8 { domain = 1; version = 2 } }
  return concat([
    new Uint8Array([...int(1, 9), ...str(2, 'moe-edge-bench')]),
    field(7, graph),
    new Uint8Array(len(8, [...str(1, ''), ...int(2, 21)])),
    new Uint8Array(len(8, [...str(1, 'com.microsoft'), ...int(2, 1)])),
  ]);
}

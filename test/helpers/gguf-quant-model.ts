// A random `llama`-arch MoE GGUF whose matrices use every ggml type the importer dequantizes (q4_1, q5_0,
// q5_1, q2_K..q6_K, bf16) next to ours: real llama.cpp runs it as it is, our converter imports it, and the two
// must agree. Blocks are random bytes with their scale fields set to sane f16 values, so every quant pattern
// occurs. Shapes are multiples of 256 (k-quant blocks).
import { gguf, GGML_TYPES, writeGguf, type GgmlType, type GgufTensor, type GgufValue } from '../../tools/convert/gguf';
import { f32ToF16 } from '../../src/format/quant';

export const H = 256;
export const FFN = 256;
const HEADS = 4;
const KV_HEADS = 2;
const HD = H / HEADS;
const EXPERTS = 4;
export const VOCAB = 259; // <unk> <s> </s> and the 256 byte tokens

// byte offsets and values of each type's f16 scale fields (per block): magnitudes keep weights ~0.05
const SCALES: Partial<Record<GgmlType, [number, number][]>> = {
  q8_0: [[0, 0.002]],
  q4_0: [[0, 0.01]],
  q4_1: [[0, 0.01], [2, -0.08]],
  q5_0: [[0, 0.005]],
  q5_1: [[0, 0.005], [2, -0.08]],
  q2_K: [[80, 0.004], [82, 0.004]],
  q3_K: [[108, 0.002]],
  q4_K: [[0, 0.0004], [2, 0.0004]],
  q5_K: [[0, 0.0002], [2, 0.0003]],
  q6_K: [[208, 0.00002]],
};

function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => (s = (s ^ (s << 13) ^ (s >>> 17) ^ (s << 5)) >>> 0);
}

function randomTensor(type: GgmlType, n: number, seed: number): Uint8Array {
  const next = random(seed);
  const { elems, bytes } = GGML_TYPES[type];
  if (type === 'f32' || type === 'f16' || type === 'bf16') {
    const v = Float32Array.from({ length: n }, () => ((next() / 2 ** 32) * 2 - 1) * 0.1);
    if (type === 'f32') return new Uint8Array(v.buffer);
    const out = new Uint16Array(n);
    const u = new Uint32Array(v.buffer);
    for (let i = 0; i < n; i++) out[i] = type === 'f16' ? f32ToF16(v[i]) : u[i] >>> 16;
    return new Uint8Array(out.buffer);
  }
  const out = new Uint8Array((n / elems) * bytes);
  for (let i = 0; i < out.length; i++) out[i] = next() & 0xff;
  for (let o = 0; o < out.length; o += bytes) {
    for (const [at, value] of SCALES[type]!) {
      const h = f32ToF16(value);
      out[o + at] = h & 0xff;
      out[o + at + 1] = h >> 8;
    }
  }
  return out;
}

const ones = (n: number) => new Uint8Array(new Float32Array(n).fill(1).buffer);

/**
 * Two layers; matrix types by position so each type feeds the logits somewhere: experts (stacked gate/up/down)
 * and attention of layer 0 and 1 take the first nine types of `types`, the rest f32.
 */
export function quantZooGguf(types: GgmlType[] = ['q4_1', 'q5_0', 'q5_1', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'bf16']): Uint8Array {
  const pick = (i: number): GgmlType => types[i % types.length];
  let seed = 1;
  const t = (name: string, dims: number[], type: GgmlType): GgufTensor => ({ name, dims, dtype: type, data: randomTensor(type, dims.reduce((a, b) => a * b, 1), seed++) });
  const tensors: GgufTensor[] = [t('token_embd.weight', [H, VOCAB], 'q8_0')];
  for (let l = 0; l < 2; l++) {
    const k = l * 7;
    tensors.push(
      { name: `blk.${l}.attn_norm.weight`, dims: [H], dtype: 'f32', data: ones(H) },
      t(`blk.${l}.attn_q.weight`, [H, H], pick(k)),
      t(`blk.${l}.attn_k.weight`, [H, KV_HEADS * HD], pick(k + 1)),
      t(`blk.${l}.attn_v.weight`, [H, KV_HEADS * HD], pick(k + 2)),
      t(`blk.${l}.attn_output.weight`, [H, H], pick(k + 3)),
      { name: `blk.${l}.ffn_norm.weight`, dims: [H], dtype: 'f32', data: ones(H) },
      t(`blk.${l}.ffn_gate_inp.weight`, [H, EXPERTS], 'f32'),
      t(`blk.${l}.ffn_gate_exps.weight`, [H, FFN, EXPERTS], pick(k + 4)),
      t(`blk.${l}.ffn_up_exps.weight`, [H, FFN, EXPERTS], pick(k + 5)),
      t(`blk.${l}.ffn_down_exps.weight`, [FFN, H, EXPERTS], pick(k + 6)),
    );
  }
  tensors.push({ name: 'output_norm.weight', dims: [H], dtype: 'f32', data: ones(H) }, t('output.weight', [H, VOCAB], 'q6_K'));
  const tokens = Array.from({ length: VOCAB }, (_, i) => (i < 3 ? ['<unk>', '<s>', '</s>'][i] : `<0x${(i - 3).toString(16).toUpperCase().padStart(2, '0')}>`));
  const meta: [string, GgufValue][] = [
    ['general.architecture', gguf.string('llama')],
    ['general.name', gguf.string('quant-zoo')],
    ['llama.vocab_size', gguf.u32(VOCAB)],
    ['llama.context_length', gguf.u32(64)],
    ['llama.embedding_length', gguf.u32(H)],
    ['llama.block_count', gguf.u32(2)],
    ['llama.feed_forward_length', gguf.u32(FFN)],
    ['llama.attention.head_count', gguf.u32(HEADS)],
    ['llama.attention.head_count_kv', gguf.u32(KV_HEADS)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(1e-5)],
    ['llama.rope.freq_base', gguf.f32(10000)],
    ['llama.rope.dimension_count', gguf.u32(HD)],
    ['llama.expert_count', gguf.u32(EXPERTS)],
    ['llama.expert_used_count', gguf.u32(2)],
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.strings(tokens)],
    ['tokenizer.ggml.scores', gguf.f32s(tokens.map(() => 0))],
    ['tokenizer.ggml.token_type', gguf.i32s(tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : 6)))],
    ['tokenizer.ggml.bos_token_id', gguf.u32(1)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(false)],
  ];
  return writeGguf({ metadata: new Map(meta), tensors });
}

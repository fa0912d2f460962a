// llama.cpp's expert FFN at our shapes, measured through node-llama-cpp (which has no op-level API) by
// difference: two synthetic GGUFs that differ only in running one or 1 + extra experts per token (expert_count =
// expert_used_count; every token runs every expert, so a batch of B tokens is a batch-B expert FFN), with a
// near-empty trunk (1 head of 32, vocab 260). (t_more - t_one) / (layers * extra) = one expert FFN, mul_mat_id
// included. extra = 3 for the native peer: with one extra expert, a granite-shaped q4_0 expert's share (~0.08 of
// the one-expert model's ~1.5 ms a layer at 16 tokens) drowned in the rounds' noise (per-round figures 1.4-210 GB/s).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { f32ToF16, type DType } from '../../src/format/quant';
import { gguf, ggmlBytes, LLAMA_FTYPE, writeGguf, type GgufTensor, type GgufValue } from '../../tools/convert/gguf';
import type { Clock } from '../matvec/measure';
import { openLlama, type LlamaSession } from '../peers/llama';
import type { FfnShape } from './ffn';

const VOCAB = 259; // <unk> <s> </s> and the 256 byte tokens: no unused ids for a random model to emit
const HEAD = 32;
const CTX = 512;

function randomGgml(dtype: DType, n: number, seed: number): Uint8Array {
  const out = new Uint8Array(ggmlBytes(dtype, n));
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) { s = (s ^ (s << 13) ^ (s >>> 17) ^ (s << 5)) >>> 0; out[i] = s & 0xff; }
  if (dtype === 'q8_0' || dtype === 'q4_0') {
    const block = dtype === 'q8_0' ? 34 : 18;
    const d = f32ToF16(0.001);
    for (let o = 0; o < out.length; o += block) { out[o] = d & 0xff; out[o + 1] = d >> 8; } // sane scales: no inf/nan
  }
  return out;
}

const f32 = (n: number, v: number) => new Uint8Array(new Float32Array(n).fill(v).buffer);

/** A `llama`-arch GGUF: `layers` blocks of a 1-head attention and `experts` experts of (H, I) in `quant`. */
export function syntheticMoe(s: FfnShape, quant: 'q8_0' | 'q4_0', layers: number, experts: number): Uint8Array {
  const H = s.hidden, I = s.inter;
  const t: GgufTensor[] = [{ name: 'token_embd.weight', dims: [H, VOCAB], dtype: 'q8_0', data: randomGgml('q8_0', H * VOCAB, 1) }];
  for (let l = 0; l < layers; l++) {
    t.push(
      { name: `blk.${l}.attn_norm.weight`, dims: [H], dtype: 'f32', data: f32(H, 1) },
      { name: `blk.${l}.attn_q.weight`, dims: [H, HEAD], dtype: 'q8_0', data: randomGgml('q8_0', H * HEAD, l + 2) },
      { name: `blk.${l}.attn_k.weight`, dims: [H, HEAD], dtype: 'q8_0', data: randomGgml('q8_0', H * HEAD, l + 3) },
      { name: `blk.${l}.attn_v.weight`, dims: [H, HEAD], dtype: 'q8_0', data: randomGgml('q8_0', H * HEAD, l + 4) },
      { name: `blk.${l}.attn_output.weight`, dims: [HEAD, H], dtype: 'q8_0', data: randomGgml('q8_0', H * HEAD, l + 5) },
      { name: `blk.${l}.ffn_norm.weight`, dims: [H], dtype: 'f32', data: f32(H, 1) },
      { name: `blk.${l}.ffn_gate_inp.weight`, dims: [H, experts], dtype: 'f32', data: f32(H * experts, 0) },
      { name: `blk.${l}.ffn_gate_exps.weight`, dims: [H, I, experts], dtype: quant, data: randomGgml(quant, H * I * experts, 7 * l + 6) },
      { name: `blk.${l}.ffn_up_exps.weight`, dims: [H, I, experts], dtype: quant, data: randomGgml(quant, H * I * experts, 7 * l + 7) },
      { name: `blk.${l}.ffn_down_exps.weight`, dims: [I, H, experts], dtype: quant, data: randomGgml(quant, H * I * experts, 7 * l + 8) },
    );
  }
  // a zero output head: every logit is 0, so greedy decoding emits <unk> (id 0), which renders as no text;
  // random text of byte tokens trips wllama's result decoding
  t.push({ name: 'output_norm.weight', dims: [H], dtype: 'f32', data: f32(H, 1) }, { name: 'output.weight', dims: [H, VOCAB], dtype: 'q8_0', data: new Uint8Array(ggmlBytes('q8_0', H * VOCAB)) });
  const tokens = Array.from({ length: VOCAB }, (_, i) => (i < 3 ? ['<unk>', '<s>', '</s>'][i] : i < 259 ? `<0x${(i - 3).toString(16).toUpperCase().padStart(2, '0')}>` : `[PAD${i}]`));
  const meta: [string, GgufValue][] = [
    ['general.architecture', gguf.string('llama')],
    ['general.name', gguf.string(`ffn-bench-${s.model}-${quant}-e${experts}`)],
    ['general.file_type', gguf.u32(LLAMA_FTYPE[quant])],
    ['general.quantization_version', gguf.u32(2)],
    ['llama.vocab_size', gguf.u32(VOCAB)],
    ['llama.context_length', gguf.u32(CTX)],
    ['llama.embedding_length', gguf.u32(H)],
    ['llama.block_count', gguf.u32(layers)],
    ['llama.feed_forward_length', gguf.u32(I)],
    ['llama.attention.head_count', gguf.u32(1)],
    ['llama.attention.head_count_kv', gguf.u32(1)],
    ['llama.attention.key_length', gguf.u32(HEAD)],
    ['llama.attention.value_length', gguf.u32(HEAD)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(1e-5)],
    ['llama.rope.freq_base', gguf.f32(10000)],
    ['llama.rope.dimension_count', gguf.u32(HEAD)],
    ['llama.expert_count', gguf.u32(experts)],
    ['llama.expert_used_count', gguf.u32(experts)],
    ['tokenizer.ggml.model', gguf.string('llama')],
    ['tokenizer.ggml.tokens', gguf.strings(tokens)],
    ['tokenizer.ggml.scores', gguf.f32s(tokens.map(() => 0))],
    ['tokenizer.ggml.token_type', gguf.i32s(tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 5)))],
    ['tokenizer.ggml.bos_token_id', gguf.u32(1)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
    ['tokenizer.ggml.unknown_token_id', gguf.u32(0)],
  ];
  return writeGguf({ metadata: new Map(meta), tensors: t });
}

/** One expert (gate + up + down) in ggml's layout: what llama.cpp reads per expert and token batch. */
export const llamaExpertBytes = (s: FfnShape, quant: 'q8_0' | 'q4_0') => 3 * ggmlBytes(quant, s.hidden * s.inter);

/** Extra experts per token of the second model for the native peer (see the header). */
export const LLAMA_EXTRA_EXPERTS = 3;

/** Writes the one- and (1 + extra)-expert GGUFs; layers chosen so the one-expert model's experts exceed poolBytes. */
export async function writeSyntheticPair(dir: string, s: FfnShape, quant: 'q8_0' | 'q4_0', poolBytes: number, extra = 1): Promise<{ layers: number; paths: [string, string]; remove(): Promise<void> }> {
  const layers = Math.min(256, Math.max(4, Math.ceil(poolBytes / llamaExpertBytes(s, quant))));
  await mkdir(dir, { recursive: true });
  const counts = [1, 1 + extra];
  const paths = counts.map((e) => join(dir, `ffn-${s.model}-${quant}-e${e}.gguf`)) as [string, string];
  for (const [i, p] of paths.entries()) await writeFile(p, syntheticMoe(s, quant, layers, counts[i]));
  return { layers, paths, remove: async () => { await Promise.all(paths.map((p) => rm(p, { force: true }))); } };
}

export interface LlamaFfnPair {
  layers: number;
  extra: number; // experts per layer that `two` runs beyond `one`'s
  one: LlamaSession; // 1 expert per layer
  two: LlamaSession; // 1 + extra experts per layer
  release(): Promise<void>;
}

/** Writes and opens the pair (see writeSyntheticPair); release() closes them and deletes the files. */
export async function prepareLlamaPair(dir: string, s: FfnShape, quant: 'q8_0' | 'q4_0', poolBytes: number, extra = LLAMA_EXTRA_EXPERTS): Promise<LlamaFfnPair> {
  const files = await writeSyntheticPair(dir, s, quant, poolBytes, extra);
  const one = await openLlama(files.paths[0], { contextSize: CTX, batchSize: 64 });
  const two = await openLlama(files.paths[1], { contextSize: CTX, batchSize: 64 });
  const release = async () => {
    await one.dispose();
    await two.dispose();
    await files.remove(); // up to ~260 MB each
  };
  return { layers: files.layers, extra, one, two, release };
}

/**
 * Rounds of alternating slices of the two models evaluating `batch` tokens per call (batch 1 = decode);
 * per round: ms per call of each, and GB/s = layers x extra x expert bytes / (t_two - t_one); the caller takes
 * medians of the two times, since a tiny expert's share can drown in the noise of one round.
 */
export async function measureLlamaFfn(p: LlamaFfnPair, s: FfnShape, quant: 'q8_0' | 'q4_0', batch: number, opts: { rounds: number; minMs: number; slices: number }, now: Clock): Promise<{ gbps: number[]; msOne: number[]; msTwo: number[] }> {
  const tokens = Array.from({ length: batch }, (_, i) => 3 + ((i * 37) % 250));
  const step = async (m: LlamaSession) => {
    if (m.sequence.nextTokenIndex + batch > CTX) await m.sequence.clearHistory();
    await m.sequence.controlledEvaluate(tokens as never); // plain tokens: evaluate, no logits
  };
  for (const m of [p.one, p.two]) { await m.sequence.clearHistory(); for (let i = 0; i < 8; i++) await step(m); }
  const out = { gbps: [] as number[], msOne: [] as number[], msTwo: [] as number[] };
  for (let r = 0; r < opts.rounds; r++) {
    const tally = [{ n: 0, ms: 0 }, { n: 0, ms: 0 }];
    for (let sl = 0; sl < opts.slices; sl++) {
      for (const [i, m] of [p.one, p.two].entries()) {
        const t0 = now();
        let n = 0;
        do { await step(m); n++; } while (now() - t0 < opts.minMs / opts.slices);
        tally[i].n += n;
        tally[i].ms += now() - t0;
      }
    }
    const [a, b] = tally.map((t) => t.ms / t.n);
    out.msOne.push(a);
    out.msTwo.push(b);
    out.gbps.push(b > a ? (p.layers * p.extra * llamaExpertBytes(s, quant)) / (b - a) / 1e6 : NaN); // NaN: below the noise
  }
  return out;
}

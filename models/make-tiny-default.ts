// Writes the placeholder default model: a seeded tiny random-weight Mixtral as an HF checkpoint (with a
// byte-level BPE tokenizer and a chat template) in a temp folder, converted to q8_0 into models/default.
// Deterministic: the same script gives byte-identical objects. Run: npm run make:tiny-model
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { seededRandom } from '../src/engine/sampler';
import { encodeSafetensors, type TensorToWrite } from '../tools/convert/safetensors';
import { convert } from '../tools/convert';

const OUT = fileURLToPath(new URL('./default/', import.meta.url));
const SEED = 20261123;

// ---- tokenizer: GPT-2 style byte-level BPE; ids 0..2 specials, 3..258 the 256 bytes, then merges, then chat tokens ----

const SPECIALS = ['<unk>', '<s>', '</s>'];
const CHAT_TOKENS = ['<|system|>', '<|user|>', '<|assistant|>', '<|end|>'];
// a few common English merges, in byte-level form (Ġ is the space byte)
const MERGES = [
  'Ġ t', 'h e', 'Ġ a', 'i n', 'Ġt he', 'e r', 'o n', 'Ġ s', 'r e', 'a n', 'Ġ w', 'o u', 'e n', 'Ġ o', 'a t',
  'n d', 'i s', 'Ġ b', 'o r', 'Ġ c', 'e s', 'i t', 'Ġ m', 'Ġ f', 'Ġ p', 'in g', 'l l', 'Ġ d', 'e d', 'Ġa nd',
  'Ġo f', 'Ġt o', 'Ġ i', 'Ġi n', 'Ġ h', 'Ġ l', 'a r', 'a l', 'Ġ y', 'Ġy ou', 'o w',
];
const CHAT_TEMPLATE =
  "{%- for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{ '<|assistant|>\\n' }}{%- endif %}";

/** GPT-2's reversible byte -> printable character map used by ByteLevel pre-tokenizer and decoder. */
export function bytesToUnicode(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return out;
}

export function tinyTokenizer(): { json: Record<string, unknown>; config: Record<string, unknown>; vocabSize: number; ids: Record<string, number> } {
  const vocab: Record<string, number> = {};
  SPECIALS.forEach((t, i) => (vocab[t] = i));
  for (const ch of bytesToUnicode()) vocab[ch] = Object.keys(vocab).length;
  for (const m of MERGES) {
    const [a, b] = m.split(' ');
    if (!(a in vocab) || !(b in vocab) || a + b in vocab) throw new Error(`bad merge ${m}`);
    vocab[a + b] = Object.keys(vocab).length;
  }
  const base = Object.keys(vocab).length;
  const ids: Record<string, number> = { ...Object.fromEntries(SPECIALS.map((t, i) => [t, i])), ...Object.fromEntries(CHAT_TOKENS.map((t, i) => [t, base + i])) };
  const added = [...SPECIALS, ...CHAT_TOKENS].map((content) => ({
    id: ids[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    // like Mixtral's tokenizer.json: encode() with special tokens puts <s> first
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: MERGES,
    },
  };
  const config = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    clean_up_tokenization_spaces: false, // keep decode(encode(text)) == text
    model_max_length: 512,
    tokenizer_class: 'PreTrainedTokenizerFast',
    chat_template: CHAT_TEMPLATE,
  };
  return { json, config, vocabSize: base + CHAT_TOKENS.length, ids };
}

// ---- weights ----


function tinyCheckpoint(vocabSize: number): { config: Record<string, unknown>; tensors: TensorToWrite[] } {
  const hidden = 64, layers = 2, heads = 4, kvHeads = 2, headDim = 16, experts = 8, ffn = 64;
  const config = {
    architectures: ['MixtralForCausalLM'],
    model_type: 'mixtral',
    vocab_size: vocabSize,
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    intermediate_size: ffn,
    num_local_experts: experts,
    num_experts_per_tok: 2,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 1e6,
    hidden_act: 'silu',
    initializer_range: 0.02,
    bos_token_id: 1,
    eos_token_id: 2,
    tie_word_embeddings: false,
    sliding_window: null,
    torch_dtype: 'float32',
  };
  const rand = seededRandom(SEED); // mulberry32, the sampler's PRNG
  const normal = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()); // Box-Muller
  const tensors: TensorToWrite[] = [];
  const mat = (name: string, rows: number, cols: number, std = config.initializer_range): void => {
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = normal() * std;
    tensors.push({ name, shape: [rows, cols], data });
  };
  const ones = (name: string, n: number): void => void tensors.push({ name, shape: [n], data: new Float32Array(n).fill(1) });

  mat('model.embed_tokens.weight', vocabSize, hidden);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    ones(`${p}.input_layernorm.weight`, hidden);
    mat(`${p}.self_attn.q_proj.weight`, heads * headDim, hidden);
    mat(`${p}.self_attn.k_proj.weight`, kvHeads * headDim, hidden);
    mat(`${p}.self_attn.v_proj.weight`, kvHeads * headDim, hidden);
    mat(`${p}.self_attn.o_proj.weight`, hidden, heads * headDim);
    ones(`${p}.post_attention_layernorm.weight`, hidden);
    mat(`${p}.block_sparse_moe.gate.weight`, experts, hidden, 0.5); // wide router logits: routing varies by token
    for (let e = 0; e < experts; e++) {
      mat(`${p}.block_sparse_moe.experts.${e}.w1.weight`, ffn, hidden);
      mat(`${p}.block_sparse_moe.experts.${e}.w2.weight`, hidden, ffn);
      mat(`${p}.block_sparse_moe.experts.${e}.w3.weight`, ffn, hidden);
    }
  }
  ones('model.norm.weight', hidden);
  mat('lm_head.weight', vocabSize, hidden);
  return { config, tensors };
}

/** The tokenizer must load in @huggingface/tokenizers and round-trip arbitrary UTF-8. */
function checkTokenizer(json: object, config: object): void {
  const tok = new Tokenizer(json, config);
  for (const text of ['Hello, world!', 'the cat and the hat\n\ttabs  spaces', 'naïve café 日本語 🙂', '<|user|>\nhi<|end|>\n']) {
    const ids = tok.encode(text, { add_special_tokens: false }).ids;
    const back = tok.decode(ids);
    if (back !== text) throw new Error(`tokenizer round trip failed: ${JSON.stringify(text)} -> ${JSON.stringify(back)}`);
  }
}

async function main(): Promise<void> {
  const tok = tinyTokenizer();
  checkTokenizer(tok.json, tok.config);
  const { config, tensors } = tinyCheckpoint(tok.vocabSize);
  const hf = await mkdtemp(join(tmpdir(), 'moe-edge-tiny-'));
  try {
    const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';
    await writeFile(join(hf, 'config.json'), json(config));
    await writeFile(join(hf, 'model.safetensors'), encodeSafetensors(tensors));
    await writeFile(join(hf, 'tokenizer.json'), json(tok.json));
    await writeFile(join(hf, 'tokenizer_config.json'), json(tok.config));
    await writeFile(
      join(hf, 'generation_config.json'),
      json({ bos_token_id: 1, eos_token_id: [2, tok.ids['<|end|>']], do_sample: true, temperature: 0.7, top_p: 0.95 }),
    );
    // clear what a previous run wrote (README.md stays)
    for (const f of ['manifest.json', 'trunk.bin', 'experts', 'tokenizer.json', 'tokenizer_config.json']) await rm(join(OUT, f), { recursive: true, force: true });
    const { manifest, bytes } = await convert({ inDir: hf, outDir: OUT, quant: 'q8_0', name: 'default' });
    console.log(`wrote ${OUT}: ${Object.keys(manifest.objects).length} objects, ${bytes} bytes, vocab ${tok.vocabSize}`);
  } finally {
    await rm(hf, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();

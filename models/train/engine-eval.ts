// Step 7: the engine side of the evaluation, against PyTorch's figures (out/eval-torch.json): held-out
// perplexity per domain with the served q8_0 model, greedy continuations with an f32 conversion of the
// same checkpoint, routing shares per layer and domain, the 100 held-out sums, samples. Writes eval.json
// (the card's figures and the unit tests' reference numbers) and exits non-zero when a check fails.
// Usage: npx tsx models/train/engine-eval.ts --data <dir> --torch <json> --model <dir> --out <json>
//        [--hf <dir> (enables the f32 greedy check)] [--log <training log>]
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChatMessage } from '../../src/engine/api';
import { loadTextModel, type LocalModel } from '../../src/engine/load';
import { fsSource } from '../../src/store/source-fs';
import { convert } from '../../tools/convert';
import { makeKernels } from '../../tools/kernels-node';
import { perplexity, textTokens } from '../../tools/perplexity';
import { commonPrefix, greedyTokens, top2Shares, withCounting } from './engine-probes';
import { modelFacts, trainingFacts } from './facts';

const DOMAINS = ['verse', 'code', 'arith'] as const;
const PPL_TOLERANCE = 0.02;
const GREEDY_TOKENS = 48;
const GREEDY_MUST_MATCH = 32;
const CHAT_SAMPLES: ChatMessage[][] = [
  [{ role: 'user', content: 'What is 25 + 17?' }],
  [{ role: 'user', content: 'Write a Python function read_config.' }],
  [{ role: 'user', content: 'Good morrow, my lord. What news from the court?' }],
];

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const { values: args } = parseArgs({ options: { data: { type: 'string' }, torch: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, hf: { type: 'string' }, log: { type: 'string' } } });
if (!args.data || !args.torch || !args.model || !args.out) throw new Error('usage: engine-eval.ts --data <dir> --torch <json> --model <dir> --out <json> [--hf <dir>] [--log <file>]');
const torch = JSON.parse(await readFile(args.torch, 'utf8')) as Json;
const kernels = await makeKernels();
const q8 = await loadTextModel(fsSource(args.model), kernels);
const failures: string[] = [];

async function complete(model: LocalModel, promptTokens: number[], maxTokens: number, stop: string[] = []): Promise<string> {
  let text = '';
  const it = model.generate({ promptTokens, maxTokens, sampling: { temperature: 0, topP: 1, topK: 0 }, stop });
  for (let r = await it.next(); !r.done; r = await it.next()) text += r.value.text;
  return text;
}

// ---- perplexity and routing on the held-out splits (q8_0, as served) ----
const perplexities: Json = {};
const routing: Json = {};
for (const d of DOMAINS) {
  const text = await readFile(join(args.data, `${d}.heldout.txt`), 'utf8');
  const tokens = textTokens(q8, text);
  if (tokens.length !== torch.domains[d].tokens) failures.push(`${d}: engine tokenizes ${tokens.length} tokens, PyTorch scored ${torch.domains[d].tokens}`);
  const { model, counter } = withCounting(q8);
  const r = await perplexity(model, tokens, { window: torch.window });
  const ratio = r.perplexity / torch.domains[d].perplexity;
  perplexities[d] = { tokens: r.tokens, torch_f32: torch.domains[d].perplexity, engine_q8_0: Math.round(r.perplexity * 1e4) / 1e4, ratio: Math.round(ratio * 1e5) / 1e5 };
  if (Math.abs(ratio - 1) > PPL_TOLERANCE) failures.push(`${d}: engine perplexity ${r.perplexity} is ${((ratio - 1) * 100).toFixed(2)}% off PyTorch's ${torch.domains[d].perplexity}`);
  routing[d] = { engine_q8_0: top2Shares(counter.counts), torch_f32: torch.domains[d].routing };
  console.log(`${d}: perplexity engine ${r.perplexity.toFixed(3)} / torch ${torch.domains[d].perplexity} (x${ratio.toFixed(4)}); top-2 shares ${routing[d].engine_q8_0.map((x: Json) => x.share).join(' ')}`);
}

// ---- greedy continuations with f32 weights: the engine must follow PyTorch token for token ----
const greedy: Json = {};
if (args.hf && existsSync(join(args.hf, 'model.safetensors'))) {
  const dir = await mkdtemp(join(tmpdir(), 'moe-edge-f32-'));
  try {
    await convert({ inDir: args.hf, outDir: dir, quant: 'f32', name: 'default-f32', warn: () => {} });
    const f32 = await loadTextModel(fsSource(dir), kernels);
    for (const [d, ref] of Object.entries(torch.greedy as Json)) {
      const ids = await greedyTokens(f32, f32.encode(ref.prompt), GREEDY_TOKENS);
      const match = commonPrefix(ids, ref.tokens);
      const complete = match === ids.length && match === ref.tokens.length; // both stopped at the same EOS
      greedy[d] = { prompt: ref.prompt, matching_prefix: match, compared: Math.max(ids.length, ref.tokens.length), torch: ref.tokens, engine_f32: ids, text: f32.codec!.decode(ids) };
      if (match < GREEDY_MUST_MATCH && !complete) failures.push(`${d}: engine f32 greedy follows PyTorch for ${match} tokens, need ${GREEDY_MUST_MATCH}`);
      console.log(`${d}: greedy f32 agrees on ${match}/${greedy[d].compared} tokens`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
} else {
  console.log('no HF checkpoint (run the training first): f32 greedy check skipped');
}

// ---- held-out sums (the served q8_0 model, stop at the end of the line) ----
const sums = { torch_f32: torch.sums.correct as number, engine_q8_0: 0, total: torch.sums.total as number, by_digits: {} as Json, answers: [] as Json[] };
for (const s of torch.sums.answers as Json[]) {
  const got = await complete(q8, q8.encode(s.prompt), 8, ['\n']);
  const ok = got === s.expected;
  if (ok) sums.engine_q8_0++;
  // digits of the larger operand: how the rate falls with size
  const digits = Math.max(...(s.prompt as string).split(/[^0-9]+/).filter(Boolean).map((n) => n.length));
  const row = (sums.by_digits[digits] ??= { engine_q8_0: 0, torch_f32: 0, total: 0 });
  row.total++;
  row.engine_q8_0 += ok ? 1 : 0;
  row.torch_f32 += s.ok ? 1 : 0;
  sums.answers.push({ prompt: s.prompt, expected: s.expected.trim(), engine: got.trim(), ok });
}
console.log(`sums: engine q8_0 ${sums.engine_q8_0}/${sums.total}, torch f32 ${sums.torch_f32}/${sums.total}`);

// ---- samples from the served model ----
const samples: Json = { completions: [], chats: [] };
for (const ref of Object.values(torch.greedy as Json)) samples.completions.push({ prompt: ref.prompt, output: await complete(q8, q8.encode(ref.prompt), 64) });
for (const messages of CHAT_SAMPLES) samples.chats.push({ messages, reply: await complete(q8, q8.encodeChat(messages), 96) });

const manifest = JSON.parse(await readFile(join(args.model, 'manifest.json'), 'utf8')) as Json;
const result = {
  name: manifest.name,
  model: modelFacts(manifest),
  training: args.log ? await trainingFacts(args.log) : null,
  data: existsSync(join(args.data, 'stats.json')) ? JSON.parse(await readFile(join(args.data, 'stats.json'), 'utf8')) : null,
  checks: { perplexity_tolerance: PPL_TOLERANCE, greedy_tokens_required: GREEDY_MUST_MATCH, greedy_checked: Object.keys(greedy).length > 0, failures },
  perplexity: perplexities,
  greedy_f32: greedy,
  sums,
  routing,
  samples,
  // short held-out excerpts with PyTorch's per-token NLL: the unit tests' reference numbers
  excerpts: torch.excerpts,
};
await writeFile(args.out, JSON.stringify(result, null, 1) + '\n');
console.log(failures.length ? `FAILED:\n  ${failures.join('\n  ')}` : 'all checks passed');
process.exitCode = failures.length ? 1 : 0;

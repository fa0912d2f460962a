// Step 8: writes the default model's card (README.md) from eval.json, so every figure in it is the one
// the pipeline measured. Usage: npx tsx models/train/card.ts models/default
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const dir = process.argv[2];
if (!dir) throw new Error('usage: card.ts <model-folder>');
const e = JSON.parse(await readFile(join(dir, 'eval.json'), 'utf8')) as Json;
const m = e.model as Json;
const a = m.architecture as Json;
const t = e.training as Json | null;
const DOMAINS: Record<string, string> = { verse: 'verse (Shakespeare)', code: 'code (Python stdlib)', arith: 'arithmetic' };

const mb = (n: number): string => `${(n / 2 ** 20).toFixed(2)} MiB`;
const millions = (n: number): string => `${(n / 1e6).toFixed(2)} M`;
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const fence = (s: string): string => '```\n' + s.replace(/```/g, '`\u200b``') + '\n```';
const table = (head: string[], rows: (string | number)[][]): string =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

const uniform = a.topK / a.numExperts;
const rowsText = (rows: Record<string, number> | undefined): string => {
  if (!rows) return '?';
  const total = Object.values(rows).reduce((x, y) => x + y, 0);
  return `${total} (${Object.entries(rows).map(([d, n]) => `${n} ${d}`).join(', ')})`;
};
const domains = Object.keys(e.perplexity);

const routingRows: string[][] = [];
for (let l = 0; l < a.numLayers; l++) {
  routingRows.push([String(l), ...domains.map((d) => {
    const en = e.routing[d].engine_q8_0[l];
    const pt = e.routing[d].torch_f32[l];
    return `${pct(en.share)} (e${en.top2[0]}, e${en.top2[1]}) · PyTorch ${pct(pt.share)}`;
  })]);
}

const data = e.data as Json | undefined;
const dataRows = domains.map((d) => [DOMAINS[d], data ? String(data[d].train_chars) : '?', data ? String(data[d].heldout_chars) : '?', String(e.perplexity[d].tokens)]);

const greedyRows = Object.entries(e.greedy_f32 as Json).map(([d, g]) => [DOMAINS[d], '`' + JSON.stringify(g.prompt).slice(1, -1) + '`', `${g.matching_prefix} / ${g.compared}`]);

/** How many of the sums the single most frequent expected answer would get right. */
function bestConstant(answers: Json[]): number {
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(a.expected, (counts.get(a.expected) ?? 0) + 1);
  return Math.max(0, ...counts.values());
}

const card = `# models/default — a small Mixture-of-Experts trained on verse, code and sums

The model moe-edge serves by default: a Mixtral-architecture MoE (8 experts per layer, top-2) trained
from scratch on this repository's 2-core CPU machine, on three domains: Shakespeare's plays (verse and
dialogue), Python standard-library source (code) and generated arithmetic (sums, differences and
products), plus a few chat-formatted exchanges built from the same training text. Its experts
specialise by domain, which is what the hot-set, routing statistics and cold-expert policies need to
measure something real. It is tiny and trained for well under an hour: expect recognisable style, not
sense.

Everything below was measured by the pipeline (\`models/train/\`, see [../README.md](../README.md)) and
written into this card from [eval.json](eval.json) (engine) and [eval-torch.json](eval-torch.json) (PyTorch).

## Sizes

${table(['', ''], [
  ['architecture', `\`mixtral\`: ${a.numLayers} layers, hidden ${a.hiddenSize}, ${a.numHeads} heads / ${a.numKvHeads} kv heads (head dim ${a.headDim}), ${a.numExperts} experts of FFN ${a.expertFfnSize} per layer, top-${a.topK} (renormalised), RoPE θ ${a.ropeTheta}, RMSNorm ε ${a.rmsNormEps.toExponential()}, untied output head`],
  ['context', `${a.contextLength} tokens`],
  ['vocabulary', `${a.vocabSize}: byte-level BPE (ByteLevel pre-tokenizer with GPT-2's split regex, no merges across digits), \`<unk>\` 0, \`<s>\` 1, \`</s>\` 2, chat tokens \`<|system|>\` \`<|user|>\` \`<|assistant|>\` \`<|end|>\``],
  ['parameters', `${millions(m.params_total)} total, ${millions(m.params_active)} active per token (${millions(m.params_per_expert)} per expert)`],
  ['stored', `${mb(m.bytes_total)}: trunk ${mb(m.bytes_trunk)} + experts ${mb(m.bytes_experts)} (${m.quant.trunk} trunk, ${m.quant.experts} experts; norms and routers f32)`],
  ['chat template', '`<s>` then `<|role|>\\n{content}<|end|>\\n` per message, then `<|assistant|>\\n`; generation stops at `</s>` or `<|end|>`'],
])}

## Training

${table(['domain', 'training chars', 'held-out chars (last 5%)', 'held-out tokens'], dataRows)}

- Sources: \`../shared/corpus/shakespeare.txt\` and \`../shared/corpus/python.txt\` (read in place, never
  copied), and 60,000 generated problems \`a op b = c\` (seeded): sums (60%) and differences (20%) of
  1-3 digit numbers (operands of 1, 2, 3 digits in proportion 3:5:2), and products of a 1-digit and a 1-2
  digit number. The held-out split of each domain is its last 5% (whole lines). For arithmetic, a fixed
  1-in-20 share of all problems (by a hash of the problem, \`a + b\` and \`b + a\` alike) is reserved: training
  lines are drawn only outside it, the 3,000 held-out lines are distinct problems from inside it, so no
  held-out problem, nor its commuted twin, occurs in training. Chat exchanges (a speech and its reply,
  "Write a Python function NAME." and the function, "What is a + b?" and the answer) come from the
  training splits only.
${t ? `- Run: ${t.steps} steps. Each batch holds ${rowsText(t.rows)} rows of \`<s>\` + ${t.args?.seq - 1} tokens from a random line
  start of its domain (chat rows: from a conversation start), cut into twice as many rows of ${t.args?.short_seq} tokens for the
  first ${Math.round((t.args?.short_until ?? 0) * 100)}% of the run (attention costs less); ${(t.tokens / 1e6).toFixed(2)} M tokens in all.
- Time: **${t.minutes} minutes** on 2 CPU cores shared with other jobs (${t.cpu_minutes} CPU-minutes of this process); ended by the
  ${t.ended_by === 'time' ? `${t.args?.minutes}-minute time budget` : 'step cap'}. Started ${t.started}. PyTorch ${t.torch}, bf16 autocast, AdamW (β 0.9/0.95,
  weight decay 0.1), lr ${t.args?.lr} with ${t.args?.warmup} warm-up steps and cosine decay to 10% over the run's progress (the larger of
  steps / ${t.args?.steps} and time / ${t.args?.minutes} min), load-balancing loss x ${t.args?.aux}.
` : '- (no training log was given to the evaluation)\n'}${t ? `- Final training loss ${t.final_train_loss}; held-out loss (first 4 windows per domain) ${Object.entries(t.final_heldout_loss ?? {}).map(([d, v]) => `${d} ${v}`).join(', ')}.
- Log: [models/train/logs/${t.log}](../train/logs/${t.log}).` : ''}

## Held-out perplexity

Per domain, over the whole held-out split, in windows of \`<s>\` + ${a.contextLength - 1} tokens. PyTorch runs the f32
checkpoint; the engine runs this folder (q8_0) through the CLI's code path.

${table(['domain', 'tokens', 'PyTorch f32', 'engine q8_0', 'engine / PyTorch'], domains.map((d) => {
  const p = e.perplexity[d];
  return [DOMAINS[d], p.tokens, p.torch_f32.toFixed(3), p.engine_q8_0.toFixed(3), `${((p.ratio - 1) * 100 >= 0 ? '+' : '')}${((p.ratio - 1) * 100).toFixed(2)}%`];
}))}

Greedy continuations of an f32 conversion of the same checkpoint follow PyTorch token for token
(${e.checks.greedy_tokens_required} tokens required):

${greedyRows.length ? table(['domain', 'prompt', 'tokens equal / generated'], greedyRows) : '(not checked in this run: no checkpoint present)'}

## Experts specialise

Share of all top-${a.topK} routings in each layer taken by that layer's ${a.topK} most used experts, per domain, on the
held-out splits (engine q8_0, experts named; PyTorch f32 beside it). A uniform router gives ${pct(uniform)}.

${table(['layer', ...domains.map((d) => DOMAINS[d])], routingRows)}

## Sums

Greedy answers to the first 100 small held-out additions (\`a + b =\`, a and b below 100, never seen in training):
**${e.sums.engine_q8_0} / ${e.sums.total}** correct with the engine (q8_0), ${e.sums.torch_f32} / ${e.sums.total} with PyTorch (f32). Chance is far lower:
a uniform guess among the possible answers 0-198 is right 0.5% of the time, and the best constant answer
(the most frequent one among these 100) ${bestConstant(e.sums.answers as Json[])} of them. By the size of the larger operand:

${table(['larger operand', 'sums', 'engine q8_0 correct', 'PyTorch f32 correct'], Object.entries(e.sums.by_digits as Json).map(([k, r]) => [`${k} digit${k === '1' ? '' : 's'}`, r.total, r.engine_q8_0, r.torch_f32]))}

The first ten:

${table(['prompt', 'expected', 'model', ''], (e.sums.answers as Json[]).slice(0, 10).map((s) => [`\`${s.prompt}\``, s.expected, s.engine, s.ok ? 'ok' : 'wrong']))}

## Samples (engine, q8_0, greedy)

${(e.samples.completions as Json[]).map((s) => fence(s.prompt + s.output)).join('\n\n')}

Chat (\`--chat\`, the chat template):

${(e.samples.chats as Json[]).map((c) => `> **user:** ${c.messages.at(-1).content}\n\n${fence(c.reply)}`).join('\n\n')}

## Reproduce

\`\`\`
npm run train:default            # whole pipeline, ~1 hour on 2 cores; rewrites this folder and card
npm run eval:default             # this folder vs eval-torch.json: perplexity, routing, sums (+ f32 greedy with a checkpoint)
npm run cli -- perplexity --model models/default --file models/train/out/data/verse.heldout.txt
npm run cli -- perplexity --model models/default --file models/train/out/data/code.heldout.txt
npm run cli -- perplexity --model models/default --file models/train/out/data/arith.heldout.txt
npm run cli -- generate --model models/default --prompt "ROMEO:" --max-tokens 64 --temperature 0
npm run cli -- generate --model models/default --chat "What is 25 + 17?" --temperature 0
\`\`\`
(the held-out files appear under \`models/train/out/data/\` after \`npm run eval:default\` or the training.)

## Limits

- ${millions(m.params_active)} active parameters trained for minutes: verse and code read like their sources for a line or
  two, then wander; it knows no facts and follows no instructions beyond the three chat patterns it saw.
- Sums: reliable only on short operands; multi-digit carries fail often.
- Licences: Shakespeare is public domain; the Python source is under the PSF License.
`;
await writeFile(join(dir, 'README.md'), card);
console.log(`wrote ${join(dir, 'README.md')}`);

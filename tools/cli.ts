// `npm run cli -- <command>`: convert checkpoints, print logits, generate text — all with the Worker's engine.
import { parseArgs } from 'node:util';
import { checkContext } from '../src/engine/context';
import { loadTextModel } from '../src/engine/load';
import { fsSource } from '../src/store/source-fs';
import { EXECUTORS, makeKernels, type ExecutorName } from './kernels-node';
import { scoreTokens } from './score';
import { kvCacheTypeOf } from './kv-cache-option';
import { DEFAULT_KV_CACHE_TYPE } from '../src/engine/kv-cache';

const USAGE = `usage: npm run cli -- <command> [options]

  convert  --in <hf-folder> --out <model-folder> --quant f32|f16|q8_0|q4_0
           [--trunk-quant q] [--expert-quant q] [--name n]
  logits   --model <model-folder> --tokens 1,2,3 [--mode prefill|decode] [--json]
           [--executor ${EXECUTORS.join('|')}] [--kv-cache-type f32|f16|q8_0|q4_0]
  generate --model <model-folder> (--prompt <text> | --chat <text>) [--max-tokens n]
           [--temperature t] [--top-p p] [--top-k k] [--seed s] [--json] [--executor e] [--kv-cache-type t]
  perplexity --model <model-folder> --file <text-file> [--max-tokens n] [--window n] [--json] [--kv-cache-type t]
           (--kv-cache-type: the KV cache's element type; generate defaults to KV_CACHE_TYPE's default, ${DEFAULT_KV_CACHE_TYPE},
           as the Worker; logits and perplexity to f32, the exact reference)
  profile  --model <model-folder> --prompts <file.jsonl> [--out stats.json]
           (JSONL lines {"domain": "...", "text": "..."}; routing counts per layer x expert + skill map)
  plan-hot-set --model <model-folder> --stats <stats.json> --budget-mb <n> [--profile <domain>]
           [--profiles] [--mixed-precision] [--out hot-set.json]
  export-gguf --model <model-folder> --out <file.gguf> [--name n]
           (llama.cpp's GGUF: mixtral as arch llama, q8_0/q4_0 blocks kept, tokenizer included)
  plan     (--model <model-folder> | --config <hf-config.json>) [--budget-mb 100] [--context n]
           [--quant q8_0,q4_0,f16] [--kv-cache-type t] [--json]   (what the 128 MB isolate holds; hot experts
           that fit; the KV cache at --kv-cache-type, default KV_CACHE_TYPE's default)
           [--shards <N|all> [--shard-budget-mb 100] [--stats stats.json] [--isolate-memory-mb n | --front-hot-mb n]
            [--write <dir> [--worker-name w] [--model-id id]]]   (tiers: front hot set, expert shards, GPU; --write:
           shard-layout.json, hot-set.json, wrangler.shard-<i>.toml, wrangler.front.toml)
  cost     --model <model-folder> [--hot-set <file> | --stats <file> --budget-mb <n> | --coverage <pct> [--hit-rate <pct>]] [--gpu L4]
           [--gpu-mode warm|scale-to-zero] [--backend-device cpu] [--rtt-ms 5] [--tokens-per-day n] [--prompt 512
           --output 256] [--target-ms 50] [--json]   (latency and $ per 1M tokens from bench/results and docs/prices.json;
           exit 2 on an input it does not have)
  merge-experts --model <model-folder> --stats <stats.json> --keep <n per layer | fraction>
           [--method prune|merge] [--calibration <prompts.jsonl>] --out <model-folder> [--name n]
           (fewer experts: the least routed pruned, or merged into the most similar kept one; docs/cli.md)
  upload   --model <model-folder> --bucket <b> [--prefix models/<name>] [--concurrency n]
           (to R2 over the S3 API: env R2_ENDPOINT, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY;
           resumable, manifest.json last)
`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'convert': {
      const { convertCommand } = await import('./convert');
      return convertCommand(rest);
    }
    case 'logits': return logitsCommand(rest);
    case 'generate': return generateCommand(rest);
    case 'perplexity': {
      const { perplexityCommand } = await import('./perplexity');
      return perplexityCommand(rest);
    }
    case 'profile': {
      const { profileCommand } = await import('./profile');
      return profileCommand(rest);
    }
    case 'plan-hot-set': {
      const { planHotSetCommand } = await import('./plan-hot-set');
      return planHotSetCommand(rest);
    }
    case 'export-gguf': {
      const { exportGgufCommand } = await import('./export-gguf');
      return exportGgufCommand(rest);
    }
    case 'plan': {
      const { planCommand } = await import('./plan');
      return planCommand(rest);
    }
    case 'cost': {
      const { costCommand } = await import('./cost');
      return costCommand(rest);
    }
    case 'merge-experts': {
      const { mergeExpertsCommand } = await import('./merge-experts');
      return mergeExpertsCommand(rest);
    }
    case 'upload': {
      const { uploadCommand } = await import('./upload');
      return uploadCommand(rest);
    }
    default:
      process.stderr.write(USAGE);
      process.exitCode = command ? 2 : 0;
  }
}

function executorOf(v: string | undefined): ExecutorName {
  const name = (v ?? 'wasm') as ExecutorName;
  if (!EXECUTORS.includes(name)) throw new Error(`unknown --executor ${v}; one of ${EXECUTORS.join(', ')}`);
  return name;
}

async function logitsCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string' }, tokens: { type: 'string' }, mode: { type: 'string', default: 'prefill' }, json: { type: 'boolean', default: false }, executor: { type: 'string' }, 'kv-cache-type': { type: 'string' } } });
  if (!values.model || !values.tokens) throw new Error('logits needs --model and --tokens');
  const tokens = values.tokens.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new Error(`bad token id "${s}"`);
    return n;
  });
  if (values.mode !== 'prefill' && values.mode !== 'decode') throw new Error('--mode is prefill or decode');
  const model = await loadTextModel(fsSource(values.model), await makeKernels(executorOf(values.executor)), { kvCacheType: kvCacheTypeOf(values['kv-cache-type']) });
  const logits = await scoreTokens(model, tokens, values.mode);
  if (values.json) {
    process.stdout.write(JSON.stringify({ tokens, logits: logits.map((r) => Array.from(r)) }) + '\n');
  } else {
    logits.forEach((row, i) => {
      let best = 0;
      for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
      process.stdout.write(`pos ${i} token ${tokens[i]} -> argmax ${best} (${row[best].toFixed(4)})\n`);
    });
  }
}

async function generateCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' }, prompt: { type: 'string' }, chat: { type: 'string' },
      'max-tokens': { type: 'string', default: '64' }, temperature: { type: 'string', default: '0' },
      'top-p': { type: 'string', default: '1' }, 'top-k': { type: 'string', default: '0' }, seed: { type: 'string' },
      json: { type: 'boolean', default: false }, executor: { type: 'string' }, 'kv-cache-type': { type: 'string' },
    },
  });
  if (!values.model || (values.prompt === undefined) === (values.chat === undefined)) throw new Error('generate needs --model and one of --prompt / --chat');
  const model = await loadTextModel(fsSource(values.model), await makeKernels(executorOf(values.executor)), { kvCacheType: kvCacheTypeOf(values['kv-cache-type'], DEFAULT_KV_CACHE_TYPE) });
  const promptTokens = values.chat !== undefined ? model.encodeChat([{ role: 'user', content: values.chat }]) : model.encode(values.prompt!);
  const maxTokens = Number(values['max-tokens']);
  checkContext(model.contextLength, promptTokens.length, maxTokens, { prompt: values.chat !== undefined ? 'chat' : 'prompt', maxTokens: 'max-tokens' });
  const it = model.generate({
    promptTokens,
    maxTokens,
    sampling: { temperature: Number(values.temperature), topP: Number(values['top-p']), topK: Number(values['top-k']), seed: values.seed === undefined ? undefined : Number(values.seed) },
    stop: [],
  });
  let text = '';
  for (;;) {
    const r = await it.next();
    if (r.done) {
      if (values.json) process.stdout.write(JSON.stringify({ text, ...r.value }) + '\n');
      else process.stdout.write(`\n[${r.value.finishReason}, ${r.value.completionTokens} tokens]\n`);
      return;
    }
    text += r.value.text;
    if (!values.json) process.stdout.write(r.value.text);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});

// Perplexity of a text under a model, computed by the Worker's engine: what `npm run cli -- perplexity`
// prints and what the default model's card compares with PyTorch. Windows: the text's tokens (no BOS)
// are cut into pieces of contextLength - 1; each piece is scored as <s> + piece, and every piece token is
// predicted (the first from <s> alone). models/train/evaluate.py computes the very same quantity.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadTextModel, type LocalModel } from '../src/engine/load';
import { fsSource } from '../src/store/source-fs';
import { makeKernels } from './kernels-node';
import { scoreTokens } from './score';
import { kvCacheTypeOf } from './kv-cache-option';

export interface PerplexityResult {
  /** tokens predicted (the text's tokens, after --max-tokens) */
  tokens: number;
  windows: number;
  /** mean negative log-likelihood per token, nats */
  nll: number;
  perplexity: number;
}

/** Text tokens as the model's tokenizer gives them, without the BOS that encode() may put first. */
export function textTokens(model: Pick<LocalModel, 'encode' | 'manifest'>, text: string): number[] {
  const ids = model.encode(text);
  const bos = model.manifest.generation.bosTokenId;
  return bos !== null && ids[0] === bos ? ids.slice(1) : ids;
}

export async function perplexity(model: Pick<LocalModel, 'manifest' | 'contextLength' | 'kernels' | 'weights' | 'expertExecutor'>, tokens: readonly number[], opts: { window?: number } = {}): Promise<PerplexityResult> {
  const bos = model.manifest.generation.bosTokenId;
  if (bos === null) throw new Error('perplexity needs a model with a BOS token');
  const piece = (opts.window ?? model.contextLength) - 1;
  if (piece < 1) throw new Error('window must be at least 2');
  let nll = 0;
  let windows = 0;
  for (let i = 0; i < tokens.length; i += piece) {
    const seq = [bos, ...tokens.slice(i, i + piece)];
    const logits = await scoreTokens(model, seq, 'prefill'); // logits[j] predicts seq[j + 1]
    for (let j = 0; j + 1 < seq.length; j++) nll -= logSoftmaxAt(logits[j], seq[j + 1]);
    windows++;
  }
  const mean = tokens.length ? nll / tokens.length : NaN;
  return { tokens: tokens.length, windows, nll: mean, perplexity: Math.exp(mean) };
}

/** log softmax(row)[target], in f64 with the max subtracted. */
function logSoftmaxAt(row: Float32Array, target: number): number {
  let max = -Infinity;
  for (let v = 0; v < row.length; v++) if (row[v] > max) max = row[v];
  let sum = 0;
  for (let v = 0; v < row.length; v++) sum += Math.exp(row[v] - max);
  return row[target] - max - Math.log(sum);
}

/** CLI: perplexity --model <dir> --file <text-file> [--max-tokens n] [--window n] [--json] */
export async function perplexityCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string' }, file: { type: 'string' }, 'max-tokens': { type: 'string' }, window: { type: 'string' }, json: { type: 'boolean', default: false }, 'kv-cache-type': { type: 'string' } } });
  if (!values.model || !values.file) throw new Error('perplexity needs --model and --file');
  const positive = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got "${v}"`);
    return n;
  };
  const maxTokens = positive('max-tokens', values['max-tokens']);
  const model = await loadTextModel(fsSource(values.model), await makeKernels(), { kvCacheType: kvCacheTypeOf(values['kv-cache-type']) });
  const all = textTokens(model, await readFile(values.file, 'utf8'));
  const r = await perplexity(model, maxTokens === undefined ? all : all.slice(0, maxTokens), { window: positive('window', values.window) });
  if (values.json) process.stdout.write(JSON.stringify({ file: values.file, ...r }) + '\n');
  else process.stdout.write(`${values.file}: perplexity ${r.perplexity.toFixed(4)} (nll ${r.nll.toFixed(5)} nats/token over ${r.tokens} tokens, ${r.windows} windows)\n`);
}

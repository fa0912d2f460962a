// `npm run cli -- cost`: what a deployment of a model costs per 1M tokens and how fast it is, from moe-edge's
// measured figures (bench/results) and cited prices (docs/prices.json); inputs it does not have exit 2.
import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import { ManifestError } from '../src/format/manifest';
import { CostInputError } from '../src/cost/errors';
import { PlanError } from '../src/planning/planner';
import { RoutingStatsError } from '../src/routing/stats';
import { costSetup, type CostOptions } from './cost-inputs';
import { costAnswer, formatAnswer } from './cost-report';

function num(name: string, v: string | undefined, dflt: number, ok: (n: number) => boolean = (n) => n > 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) throw new CostInputError(`--${name} is out of range or not a number: "${v}"`);
  return n;
}

export function costOptions(args: string[]): { options: CostOptions; json: boolean; targetMs: number } {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' }, 'hot-set': { type: 'string' }, stats: { type: 'string' }, 'budget-mb': { type: 'string' }, coverage: { type: 'string' }, 'hit-rate': { type: 'string' },
      gpu: { type: 'string', default: 'L4' }, 'gpu-mode': { type: 'string', default: 'warm' }, 'backend-device': { type: 'string' },
      'rtt-ms': { type: 'string' }, 'tokens-per-day': { type: 'string' }, prompt: { type: 'string' }, output: { type: 'string' },
      'target-ms': { type: 'string' }, 'tokens-per-pass': { type: 'string' }, 'loads-per-day': { type: 'string' },
      results: { type: 'string', default: 'bench/results' }, prices: { type: 'string', default: 'docs/prices.json' }, json: { type: 'boolean', default: false },
    },
  });
  if (!values.model) throw new CostInputError('cost needs --model <model-folder>');
  if (values['hot-set'] && values.stats) throw new CostInputError('give --hot-set or --stats, not both');
  if (values.coverage && (values['hot-set'] || values.stats)) throw new CostInputError('--coverage is for a deployment without a hot set or statistics');
  if (values['gpu-mode'] !== 'warm' && values['gpu-mode'] !== 'scale-to-zero') throw new CostInputError(`--gpu-mode is warm or scale-to-zero, got "${values['gpu-mode']}"`);
  if (values['hit-rate'] !== undefined && (values['hot-set'] || values.stats)) throw new CostInputError('--hit-rate goes with --coverage (a hot set or statistics bring their own)');
  const hitRate = values['hit-rate'] === undefined ? undefined : num('hit-rate', values['hit-rate'].replace(/%$/, ''), 0, (n) => n >= 0 && n <= 100) / 100;
  const coverage = values.coverage === undefined ? undefined : num('coverage', values.coverage.replace(/%$/, ''), 50, (n) => n >= 0 && n <= 100) / 100;
  return {
    options: {
      model: values.model,
      hotSet: values['hot-set'],
      stats: values.stats,
      budgetMb: values['budget-mb'] === undefined ? undefined : num('budget-mb', values['budget-mb'], 0),
      coverage,
      hitRate,
      gpu: values.gpu!,
      gpuMode: values['gpu-mode'],
      backendDevice: values['backend-device'],
      rttMs: num('rtt-ms', values['rtt-ms'], 5, (n) => n >= 0),
      tokensPerDay: num('tokens-per-day', values['tokens-per-day'], 10_000_000),
      promptTokens: num('prompt', values.prompt, 512, (n) => Number.isInteger(n) && n > 0),
      outputTokens: num('output', values.output, 256, (n) => Number.isInteger(n) && n > 0),
      tokensPerPass: num('tokens-per-pass', values['tokens-per-pass'], 1, (n) => n >= 1),
      loadsPerDay: num('loads-per-day', values['loads-per-day'], 1440, (n) => n >= 0),
      results: values.results!,
      prices: values.prices!,
    },
    json: values.json!,
    targetMs: num('target-ms', values['target-ms'], 50),
  };
}

/** CLI: cost --model <dir> [--hot-set f | --stats f --budget-mb n | --coverage p] [--gpu L4] [--gpu-mode warm|scale-to-zero] ... */
export async function costCommand(args: string[]): Promise<void> {
  try {
    const { options, json, targetMs } = costOptions(args);
    const answer = costAnswer(costSetup(options), targetMs);
    process.stdout.write((json ? JSON.stringify(answer, null, 2) : formatAnswer(answer)) + '\n');
  } catch (e) {
    // inputs it cannot use: a clear message and exit 2 (a crash stays a crash)
    if (!(e instanceof CostInputError || e instanceof ManifestError || e instanceof RoutingStatsError || e instanceof PlanError || e instanceof ZodError)) throw e;
    process.stderr.write(`cost: ${e instanceof ZodError ? `a bench/results file is not as expected: ${e.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` : e.message}\n`);
    process.exitCode = 2;
  }
}

// `npx tsx bench/cost/record.ts`: the `cost` command's answers for the default model and the granite-shaped model
// on three GPUs, the deployment table of docs/choosing-a-deployment.md and latency against the round trip, recorded
// in bench/results/cost.{md,json}. Every number is the command's own arithmetic on bench/results and docs/prices.json.
import { execSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { estimateSplit, estimateWholeGpu, estimateWorkersAi, type Estimate } from '../../src/cost/estimate';
import { workersAiFor } from '../../src/cost/prices';
import { costSetup, type CostOptions } from '../../tools/cost-inputs';
import { costAnswer, estimateRows, formatAnswer, usd, type CostAnswer } from '../../tools/cost-report';
import { blended } from '../../src/cost/sweep';

const GPUS = ['L4', 'L40S', 'H100'];
const COVERAGES = [0.25, 0.5, 0.75];
const REQUEST = { promptTokens: 256, outputTokens: 256, tokensPerDay: 10_000_000, rttMs: 5 };

/** Held-out hit rate of the global hot set at a share of the expert bytes (bench:hotset), for the default model. */
function measuredHitRate(share: number): number | undefined {
  const h = JSON.parse(readFileSync('bench/results/hotset.json', 'utf8')) as { rows: { share: number; domain: string; global: number }[] };
  return h.rows.find((r) => r.domain === 'all' && Math.abs(r.share - share) < 1e-9)?.global;
}

interface ModelCase { folder: string; hitRates: boolean }
const MODELS: ModelCase[] = [
  { folder: 'models/default', hitRates: true },
  { folder: '.cache/models/granite-shaped-q4_0', hitRates: false },
];

function options(m: ModelCase, gpu: string, coverage: number, extra: Partial<CostOptions> = {}): CostOptions {
  return {
    model: m.folder, coverage, hitRate: m.hitRates ? measuredHitRate(coverage) : undefined, gpu, gpuMode: 'warm', rttMs: REQUEST.rttMs,
    tokensPerDay: REQUEST.tokensPerDay, promptTokens: REQUEST.promptTokens, outputTokens: REQUEST.outputTokens, tokensPerPass: 1, loadsPerDay: 1440,
    results: 'bench/results', prices: 'docs/prices.json', ...extra,
  };
}

function command(m: ModelCase, gpu: string, coverage: number): string {
  const h = m.hitRates ? measuredHitRate(coverage) : undefined;
  return `npm run cli -- cost --model ${m.folder} --coverage ${coverage * 100}${h !== undefined ? ` --hit-rate ${(100 * h).toFixed(1)}` : ''} --gpu ${gpu} --prompt ${REQUEST.promptTokens} --output ${REQUEST.outputTokens} --tokens-per-day ${REQUEST.tokensPerDay}`;
}

/** docs/choosing-a-deployment.md's table: split at 25/50/75%, edge-only, the whole model on the GPU, Workers AI. */
function deploymentTable(m: ModelCase, gpu: string): { rows: string[]; estimates: Estimate[] } {
  const base = costSetup(options(m, gpu, 0.5));
  const list: Estimate[] = COVERAGES.map((c) => {
    const h = m.hitRates ? measuredHitRate(c)! : c;
    return estimateSplit(base.ctx, c, h, `split, ${c * 100}% of expert bytes at the edge`);
  });
  list.push(estimateSplit(base.ctx, 1, 1, 'edge-only (front + expert shards)'));
  list.push(estimateWholeGpu(base.ctx));
  const wai = workersAiFor(base.prices, base.shape.name);
  if (wai) list.push(estimateWorkersAi(wai));
  return { rows: estimateRows(list, REQUEST.promptTokens, REQUEST.outputTokens), estimates: list };
}

function rttTable(m: ModelCase): string[] {
  const rows = ['| round trip ms | ' + COVERAGES.map((c) => `${c * 100}% at the edge`).join(' | ') + ' | edge-only |', '|---:|' + COVERAGES.map(() => '---:|').join('') + '---:|'];
  for (const rtt of [1, 2, 5, 10, 20, 50]) {
    const s = costSetup(options(m, 'L4', 0.5, { rttMs: rtt }));
    const cells = COVERAGES.map((c) => estimateSplit(s.ctx, c, m.hitRates ? measuredHitRate(c)! : c, '').decodeMs!.toFixed(1));
    rows.push(`| ${rtt} | ${cells.join(' | ')} | ${estimateSplit(s.ctx, 1, 1, '').decodeMs!.toFixed(1)} |`);
  }
  return rows;
}

/** Blended $ per 1M output tokens against traffic: where a warm GPU, a scaled-to-zero one, the edge alone and
 *  Workers AI each win. */
function trafficTable(m: ModelCase, gpu: string): string[] {
  const days = [1e5, 1e6, 1e7, 1e8, 1e9];
  const rows = ['| output tokens/day | split 50%, GPU warm | split 50%, GPU scaled to zero | edge-only | whole model, GPU warm | whole model, GPU scaled to zero | Workers AI |', '|---:|---:|---:|---:|---:|---:|---:|'];
  const h = m.hitRates ? measuredHitRate(0.5)! : 0.5;
  const b = (e: Estimate) => usd(blended(e, REQUEST.promptTokens, REQUEST.outputTokens));
  for (const t of days) {
    const warm = costSetup(options(m, gpu, 0.5, { tokensPerDay: t }));
    const zero = costSetup(options(m, gpu, 0.5, { tokensPerDay: t, gpuMode: 'scale-to-zero' }));
    const wai = workersAiFor(warm.prices, warm.shape.name);
    rows.push(`| ${t.toExponential(0).replace('e+', 'e')} | ${b(estimateSplit(warm.ctx, 0.5, h, ''))} | ${b(estimateSplit(zero.ctx, 0.5, h, ''))} | ${b(estimateSplit(warm.ctx, 1, 1, ''))} | ${b(estimateWholeGpu(warm.ctx))} | ${b(estimateWholeGpu(zero.ctx))} | ${wai ? b(estimateWorkersAi(wai)) : '-'} |`);
  }
  return rows;
}

const answers: { command: string; answer: CostAnswer }[] = [];
const md: string[] = [
  '# What it costs and how fast it is: the `cost` command\'s answers',
  '',
  `\`npx tsx bench/cost/record.ts\` — ${new Date().toISOString()}, commit ${execSync('git rev-parse --short HEAD').toString().trim()}. The numbers are \`npm run cli -- cost\`'s arithmetic (src/cost) on moe-edge's measured figures (bench/results/*.json) and the prices in docs/prices.json; the inputs and notes under each answer say which. Requests of ${REQUEST.promptTokens} prompt + ${REQUEST.outputTokens} output tokens, ${REQUEST.tokensPerDay / 1e6}M output tokens a day, ${REQUEST.rttMs} ms edge <-> GPU round trip, GPU kept warm. **No GPU was measured**: GPU times are rooflines from published bandwidth and FLOPs; the edge speed is one AMD EPYC thread in local workerd. How to read it: [docs/choosing-a-deployment.md](../../docs/choosing-a-deployment.md).`,
  '',
];
for (const m of MODELS) {
  const name = costSetup(options(m, 'L4', 0.5)).shape.name;
  md.push(`## ${name}`, '');
  for (const gpu of GPUS) {
    const t = deploymentTable(m, gpu);
    md.push(`### deployments with an ${gpu}`, '', ...t.rows, '');
  }
  md.push(`### $ per 1M output tokens (input included) against traffic (L4)`, '', ...trafficTable(m, 'L4'), '');
  md.push(`### per-token latency (ms) against the edge <-> GPU round trip (L4)`, '', ...rttTable(m), '');
  for (const gpu of GPUS) {
    const cmd = command(m, gpu, 0.5);
    const a = costAnswer(costSetup(options(m, gpu, 0.5)), 50);
    answers.push({ command: cmd, answer: a });
    md.push(`### \`${cmd}\``, '', '```', formatAnswer(a), '```', '');
  }
}
writeFileSync('bench/results/cost.md', md.join('\n'));
writeFileSync('bench/results/cost.json', JSON.stringify({ date: new Date().toISOString(), request: REQUEST, answers }, null, 2) + '\n');
process.stdout.write(`wrote bench/results/cost.md and cost.json (${answers.length} answers)\n`);

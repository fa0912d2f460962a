// The `cost` command's answer, computed and rendered: the deployment asked for, its alternatives (edge-only with
// shards, the whole model on the GPU, Workers AI), the coverage sweep, the cheapest coverage within a latency
// target and the crossovers; as text for people and as JSON. bench/cost/record.ts renders the same for the docs.
import { estimateSplit, estimateWholeGpu, estimateWorkersAi, type Estimate } from '../src/cost/estimate';
import { workersAiFor } from '../src/cost/prices';
import { blended, cheapestWithin, coverageSweep, crossover, type CoverageOption } from '../src/cost/sweep';
import type { CostSetup } from './cost-inputs';

export interface CostAnswer {
  model: string;
  gpu: { name: string; provider: string; mode: string; source: string; read: string; verified: boolean };
  request: { promptTokens: number; outputTokens: number; tokensPerDay: number; rttMs: number; tokensPerPass: number };
  hitRateFrom: string;
  deployment: Estimate;
  alternatives: Estimate[];
  sweep: { coverage: number; hitRate: number; decodeMs: number | null; ttftMs: number | null; perMOutput: number; blendedPerMOutput: number; shards: number }[];
  targetMs: number;
  cheapest: { coverage: number; hitRate: number; decodeMs: number | null; blendedPerMOutput: number } | null;
  crossovers: { versus: string; tokensPerDay: number; cheaperBelow: string }[];
  workersAiNote: string | null;
  sources: string[];
  notes: string[];
}

export function costAnswer(setup: CostSetup, targetMs: number): CostAnswer {
  const { ctx, shape } = setup;
  const label = setup.coverage >= 1 && setup.hitRate >= 1 ? 'edge-only' : `split, ${pct(setup.coverage)} of expert bytes at the edge`;
  const deployment = estimateSplit(ctx, setup.coverage, setup.hitRate, label);
  const alternatives: Estimate[] = [];
  if (setup.coverage < 1) alternatives.push(estimateSplit(ctx, 1, 1, 'edge-only (every expert at the edge)'));
  alternatives.push(estimateWholeGpu(ctx));
  const wai = workersAiFor(setup.prices, shape.name);
  if (wai) alternatives.push(estimateWorkersAi(wai));
  const options = coverageSweep(ctx, setup.hitRateAt);
  const best = cheapestWithin(options, targetMs, ctx.promptTokens, ctx.outputTokens);
  const crossovers: CostAnswer['crossovers'] = [];
  const split = (c: typeof ctx) => estimateSplit(c, setup.coverage, setup.hitRate, label);
  const whole = crossover(ctx, split, estimateWholeGpu);
  if (whole) crossovers.push({ versus: `whole model on one ${setup.gpu.name}`, ...whole });
  if (wai) {
    const w = crossover(ctx, split, () => estimateWorkersAi(wai));
    if (w) crossovers.push({ versus: `Workers AI ${wai.id}`, ...w });
  }
  const b = (e: Estimate) => blended(e, ctx.promptTokens, ctx.outputTokens);
  return {
    model: shape.name,
    gpu: { name: setup.gpu.name, provider: setup.gpu.provider, mode: ctx.gpuMode, source: setup.gpu.source, read: setup.gpu.read, verified: setup.gpu.verified },
    request: { promptTokens: ctx.promptTokens, outputTokens: ctx.outputTokens, tokensPerDay: ctx.tokensPerDay, rttMs: ctx.rttMs, tokensPerPass: ctx.tokensPerPass },
    hitRateFrom: setup.hitRateFrom,
    deployment,
    alternatives,
    sweep: options.map((o: CoverageOption) => ({ coverage: o.coverage, hitRate: o.hitRate, decodeMs: o.estimate.decodeMs, ttftMs: o.estimate.ttft?.ms ?? null, perMOutput: o.estimate.perMOutput.total, blendedPerMOutput: b(o.estimate), shards: o.estimate.shards })),
    targetMs,
    cheapest: best ? { coverage: best.coverage, hitRate: best.hitRate, decodeMs: best.estimate.decodeMs, blendedPerMOutput: b(best.estimate) } : null,
    crossovers,
    workersAiNote: wai ? null : `Workers AI serves no model listed as comparable to ${shape.name} (docs/prices.json); its smallest LLM, ${setup.prices.workersAi.models[0].id}, costs $${setup.prices.workersAi.models[0].inputPerMillion}/$${setup.prices.workersAi.models[0].outputPerMillion} per 1M input/output tokens`,
    sources: [...setup.sources, `${setup.prices.workers.source} (read ${setup.prices.workers.read})`, `${setup.prices.r2.source} (read ${setup.prices.r2.read})`, `${setup.gpu.source} (read ${setup.gpu.read}${setup.gpu.verified ? '' : ', not verified on the provider page'})`, ...(wai ? [`${setup.prices.workersAi.source} (read ${setup.prices.workersAi.read})`] : [])],
    notes: setup.notes,
  };
}

const pct = (x: number) => `${Math.round(x * 100)}%`;
const ms = (x: number | null | undefined) => (x == null ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
export const usd = (x: number) => (x === 0 ? '0' : x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x >= 0.01 ? x.toFixed(3) : x.toPrecision(2));
const count = (x: number) => (x >= 1e9 ? `${(x / 1e9).toPrecision(3)}G` : x >= 1e6 ? `${(x / 1e6).toPrecision(3)}M` : x >= 1e3 ? `${(x / 1e3).toPrecision(3)}k` : x.toFixed(0));

/** One table row per estimate: latency, TTFT, $ per 1M output (its parts) and per 1M input tokens. */
export function estimateRows(list: readonly Estimate[], promptTokens: number, outputTokens: number): string[] {
  const rows = ['| deployment | hit rate | shards | per-token ms | TTFT ms | $/1M out | requests | CPU | shards | R2 | GPU | Workers AI | $/1M in | $/1M out, input included |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const e of list) {
    const o = e.perMOutput;
    rows.push(`| ${e.label} | ${e.kind === 'split' || e.kind === 'edge-only' ? pct(e.hitRate) : '-'} | ${e.shards} | ${ms(e.decodeMs)} | ${ms(e.ttft?.ms)} | **${usd(o.total)}** | ${usd(o.workersRequests)} | ${usd(o.workersCpu)} | ${usd(o.shards)} | ${usd(o.r2Storage + o.r2Reads)} | ${usd(o.gpu)} | ${usd(o.workersAi)} | ${usd(e.perMInput.total)} | ${usd(blended(e, promptTokens, outputTokens))} |`);
  }
  return rows;
}

export function formatAnswer(a: CostAnswer): string {
  const r = a.request;
  const out = [
    `cost of ${a.model}: ${count(r.tokensPerDay)} output tokens/day in requests of ${r.promptTokens} prompt + ${r.outputTokens} output tokens; GPU ${a.gpu.name} (${a.gpu.provider}, ${a.gpu.mode}); edge <-> GPU round trip ${r.rttMs} ms${r.tokensPerPass > 1 ? `; ${r.tokensPerPass} tokens per verification pass` : '; speculation off'}`,
    `hit rate: ${a.hitRateFrom}`,
    '',
    ...estimateRows([a.deployment, ...a.alternatives], r.promptTokens, r.outputTokens),
    '',
  ];
  const g = a.deployment.gpuBill;
  if (g) out.push(`GPU for the split: busy ${(g.busySecondsPerDay / 3600).toFixed(2)} h/day at ${a.deployment.concurrency.toFixed(2)} generations decoding at once (${a.deployment.callsPerBatch.toFixed(2)} calls per device batch), billed ${(g.billedSecondsPerDay / 3600).toFixed(1)} h/day on ${g.gpus} GPU(s): $${g.dollarsPerDay.toFixed(2)}/day`);
  if (a.deployment.decode) out.push(`per token: trunk ${ms(a.deployment.decode.trunkMs)} ms + layers ${ms(a.deployment.decode.layersMs)} ms; ${a.deployment.decode.coldLayers.toFixed(2)} layers with a cold pick (a round trip each), ${a.deployment.decode.shardLayers.toFixed(2)} with a shard call`);
  out.push('', `coverage sweep (hit rate as above):`, '| edge coverage | hit rate | shards | per-token ms | TTFT ms | $/1M out, input included |', '|---:|---:|---:|---:|---:|---:|');
  for (const s of a.sweep.filter((_, i) => i % 2 === 0)) out.push(`| ${pct(s.coverage)} | ${pct(s.hitRate)} | ${s.shards} | ${ms(s.decodeMs)} | ${ms(s.ttftMs)} | ${usd(s.blendedPerMOutput)} |`);
  out.push('', a.cheapest ? `cheapest coverage within ${a.targetMs} ms per token: ${pct(a.cheapest.coverage)} (hit rate ${pct(a.cheapest.hitRate)}, ${ms(a.cheapest.decodeMs)} ms, $${usd(a.cheapest.blendedPerMOutput)} per 1M output tokens)` : `no coverage meets ${a.targetMs} ms per token`);
  for (const c of a.crossovers) out.push(`crossover with ${c.versus}: ${count(c.tokensPerDay)} output tokens/day (below it the cheaper is ${c.cheaperBelow})`);
  if (!a.crossovers.length) out.push('no crossover between 1k and 1T output tokens/day');
  if (a.workersAiNote) out.push(a.workersAiNote);
  out.push('', 'inputs:', ...a.sources.map((s) => `  ${s}`), 'notes:', ...a.notes.map((s) => `  ${s}`));
  return out.join('\n');
}

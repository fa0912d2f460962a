// `npm run cli -- profile`: runs a calibration set (JSONL of {"domain", "text"}) through the Worker's engine
// with a recording expert executor and writes routing statistics (per layer x expert counts, overall and
// per domain) plus the skill map's centroids: the input of `plan-hot-set` and of the Worker's profiles.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { Sequence } from '../src/engine/forward';
import { loadTextModel, type LocalModel } from '../src/engine/load';
import { prefill } from '../src/engine/prefill';
import { fsSource } from '../src/store/source-fs';
import { RoutingRecorder } from '../src/routing/record';
import { buildSkillMap } from '../src/routing/skill-map';
import { addCounts, emptyCounts, ROUTING_STATS_FORMAT, RoutingStatsSchema, type RoutingCounts, type RoutingStats } from '../src/routing/stats';
import { makeKernels } from './kernels-node';

export const PromptSchema = z.object({ domain: z.string().min(1), text: z.string().min(1) });
export type Prompt = z.infer<typeof PromptSchema>;

/** One prompt per line; blank lines are skipped; a bad line is an error naming the line. */
export function parsePrompts(jsonl: string, file = 'prompts'): Prompt[] {
  const out: Prompt[] = [];
  jsonl.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON: ${(e as Error).message}`);
    }
    const r = PromptSchema.safeParse(json);
    if (!r.success) throw new Error(`${file}:${i + 1}: expected {"domain": string, "text": string}: ${r.error.issues[0]!.message}`);
    out.push(r.data);
  });
  return out;
}

/** A model whose expert calls are counted: load once, then route as many prompts as needed. */
export interface ProfiledModel {
  model: LocalModel;
  recorder: RoutingRecorder;
}

export async function loadProfiled(dir: string): Promise<ProfiledModel> {
  const model = await loadTextModel(fsSource(dir), await makeKernels());
  const a = model.manifest.architecture;
  return { model, recorder: new RoutingRecorder(model.expertExecutor, a.numLayers, a.numExperts) };
}

/** The prompt's tokens as the Worker would prefill them (BOS as configured), cut to the context. */
export function promptTokens(p: ProfiledModel, text: string): number[] {
  return p.model.encode(text).slice(0, p.model.contextLength);
}

/**
 * Prefill `tokens` and return their routing counts; with `prefix`, also the counts of the first `prefix`
 * tokens alone (what a skill map sees of a prompt whose rest stands in for the generated text).
 */
export async function routeTokens(p: ProfiledModel, tokens: readonly number[], prefix?: number): Promise<{ all: RoutingCounts; prefix?: RoutingCounts }> {
  const { model, recorder } = p;
  recorder.take();
  const seq = new Sequence(model.kernels, model.weights, tokens.length);
  let head: RoutingCounts | undefined;
  try {
    const cuts = [...(prefix !== undefined ? [Math.min(prefix, tokens.length)] : []), tokens.length];
    let from = 0;
    for (const end of cuts) {
      await prefill(model.kernels, seq, recorder, tokens.slice(from, end), { logits: 'last' });
      from = end;
      if (prefix !== undefined && !head) head = { ...recorder.snapshot(), prompts: 1 };
    }
  } finally {
    seq.release();
  }
  return { all: { ...recorder.take(), prompts: 1 }, ...(head ? { prefix: head } : {}) };
}

/** Routing statistics of a prompt set: overall, per domain, and the skill map built from the domains. */
export async function profilePrompts(p: ProfiledModel, prompts: readonly Prompt[], onProgress?: (done: number) => void): Promise<RoutingStats> {
  const a = p.model.manifest.architecture;
  let overall = emptyCounts(a.numLayers, a.numExperts);
  const domains: Record<string, RoutingCounts> = {};
  for (const [i, prompt] of prompts.entries()) {
    const { all } = await routeTokens(p, promptTokens(p, prompt.text));
    overall = addCounts(overall, all);
    domains[prompt.domain] = addCounts(domains[prompt.domain] ?? emptyCounts(a.numLayers, a.numExperts), all);
    onProgress?.(i + 1);
  }
  const skillMap = buildSkillMap(domains);
  return RoutingStatsSchema.parse({
    format: ROUTING_STATS_FORMAT,
    model: p.model.manifest.name,
    numLayers: a.numLayers,
    numExperts: a.numExperts,
    topK: a.topK,
    overall,
    domains,
    ...(skillMap ? { skillMap } : {}),
  });
}

/** Per layer, each expert's share of the routings in percent (what the CLI prints). */
export function formatShares(stats: RoutingStats): string {
  const lines: string[] = [];
  const rows: [string, RoutingCounts][] = [['overall', stats.overall], ...Object.entries(stats.domains)];
  for (const [name, c] of rows) {
    lines.push(`${name}: ${c.prompts} prompts, ${c.tokens} tokens; routing share per expert (%), one row per layer`);
    c.counts.forEach((row, l) => {
      const total = row.reduce((s, v) => s + v, 0) || 1;
      lines.push(`  layer ${String(l).padStart(2)}: ${row.map((v) => ((100 * v) / total).toFixed(1).padStart(5)).join(' ')}`);
    });
  }
  return lines.join('\n');
}

/** CLI: profile --model <dir> --prompts <file.jsonl> [--out stats.json] [--quiet] */
export async function profileCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { model: { type: 'string' }, prompts: { type: 'string' }, out: { type: 'string' }, quiet: { type: 'boolean', default: false } } });
  if (!values.model || !values.prompts) throw new Error('profile needs --model <model-folder> and --prompts <file.jsonl>');
  const prompts = parsePrompts(await readFile(values.prompts, 'utf8'), values.prompts);
  if (prompts.length === 0) throw new Error(`${values.prompts} has no prompts`);
  const p = await loadProfiled(values.model);
  const log = (s: string) => values.quiet || process.stderr.write(s);
  const t0 = performance.now();
  const stats = await profilePrompts(p, prompts, (n) => {
    if (process.stderr.isTTY && n % 20 === 0) log(`\rprofiled ${n}/${prompts.length} prompts`);
  });
  log(`${process.stderr.isTTY ? '\r' : ''}profiled ${prompts.length} prompts, ${stats.overall.tokens} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  log(formatShares(stats) + '\n');
  const json = JSON.stringify(stats) + '\n';
  if (values.out) {
    await writeFile(values.out, json);
    log(`wrote ${values.out}${stats.skillMap ? ` (skill map over ${Object.keys(stats.skillMap.centroids).join(', ')})` : ''}\n`);
  } else {
    process.stdout.write(json);
  }
}

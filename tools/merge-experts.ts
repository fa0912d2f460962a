// `npm run cli -- merge-experts`: a model folder with fewer experts per layer. The experts routed least often
// in the routing statistics are removed, then either pruned (their router rows dropped; the engine renormalises
// top-k as the architecture does) or merged, each into the kept expert whose outputs on calibration tokens are
// most like its own (neurons aligned, weights averaged by routing frequency, router row refitted).
import { readFile, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadFromManifest } from '../src/engine/load';
import { objectNames } from '../src/format/manifest';
import type { ExpertFloats } from '../src/merge/combine';
import { pruneRouter } from '../src/merge/router-fit';
import { checkStatsFor, chooseKept, MergeInputError, parseKeep } from '../src/merge/select';
import { parseRoutingStats, type RoutingStats } from '../src/routing/stats';
import { readManifest, readVerified } from '../src/store/source';
import { fsSource } from '../src/store/source-fs';
import { makeKernels } from './kernels-node';
import { calibrationTokens, sampleRouterInputs } from './merge/calibrate';
import { foldLayer, type FoldRecord } from './merge/fold-layer';
import { routerFloats, writeReducedModel } from './merge/write';
import { parsePrompts } from './profile';

export type MergeMethod = 'prune' | 'merge';

export interface MergeOptions {
  model: string;
  /** routing statistics of `model` (a document, or a file written by `profile`) */
  stats: RoutingStats | string;
  /** experts kept per layer, or a fraction of them ("6", "0.75") */
  keep: string;
  method: MergeMethod;
  /** JSONL of {"domain", "text"} (or token id sequences, for a model without a tokenizer): needed by merge
   *  (output similarity, the down and router refits) */
  calibration?: string | { tokens: number[][] };
  out: string;
  /** manifest name of the result; default `<name>-<method><n>` */
  name?: string;
  /** router inputs sampled per layer from the calibration prompts */
  sampleTokens?: number;
  /** merge without the down refit / router refit (what each adds is in bench/results/merge.md) */
  downRefit?: boolean;
  routerFit?: boolean;
  log?: (line: string) => void;
}

export interface MergeReport {
  name: string;
  method: MergeMethod;
  numExperts: number;
  /** per layer: original ids kept (new id = index) */
  kept: number[][];
  /** per layer: removed original id -> the original id of the kept expert it went into (merge), with similarity */
  merged: FoldRecord[];
}

async function readJson(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MergeInputError(`${file}: not JSON: ${(e as Error).message}`);
  }
}

/** Everything checked before a byte is written: the choice of experts, the stats, the method, the folders. */
async function checked(o: MergeOptions) {
  if (o.method !== 'prune' && o.method !== 'merge') throw new MergeInputError(`--method ${JSON.stringify(o.method)}: prune or merge`);
  const source = fsSource(o.model);
  const manifest = await readManifest(source);
  const a = manifest.architecture;
  const keep = parseKeep(o.keep, a);
  const stats = parseRoutingStats(typeof o.stats === 'string' ? await readJson(o.stats) : o.stats);
  checkStatsFor(stats, manifest.name, a);
  if (o.method === 'merge' && !o.calibration) throw new MergeInputError('--method merge needs --calibration <prompts.jsonl>: experts are matched by their outputs on those tokens and the router is refitted on them');
  const cal = o.calibration;
  const prompts = typeof cal === 'string' ? parsePrompts(await readFile(cal, 'utf8'), cal) : [];
  if (cal !== undefined && (typeof cal === 'string' ? prompts : cal.tokens).length === 0) throw new MergeInputError(`${typeof cal === 'string' ? cal : 'the calibration'} has no prompts`);
  const inDir = await realpath(o.model);
  const outDir = resolve(o.out);
  if (outDir === inDir || (await realpath(outDir).catch(() => outDir)) === inDir) throw new MergeInputError('--out must be another folder than --model');
  return { source, manifest, keep, stats, prompts, outDir };
}

export async function mergeExperts(o: MergeOptions): Promise<MergeReport> {
  const { source, manifest, keep, stats, prompts, outDir } = await checked(o);
  const log = o.log ?? (() => {});
  const a = manifest.architecture;
  const H = a.hiddenSize;
  const { kept, removed } = chooseKept(stats, keep);
  const name = o.name ?? `${manifest.name}-${o.method}${keep}`;
  const trunk = await readVerified(source, manifest, objectNames.trunk);
  const routers: Float32Array[] = [];
  const rewritten = new Map<string, ExpertFloats>();
  const merged: MergeReport['merged'] = [];

  if (o.method === 'prune' || removed.every((r) => r.length === 0)) {
    for (let l = 0; l < a.numLayers; l++) routers.push(pruneRouter(routerFloats(manifest, trunk, l), H, kept[l]));
  } else {
    const model = await loadFromManifest(source, manifest, await makeKernels());
    const sequences = typeof o.calibration === 'string' ? calibrationTokens(model, prompts) : o.calibration!.tokens;
    const samples = await sampleRouterInputs(model, sequences, o.sampleTokens ?? 8192);
    log(`sampled ${samples[0].picks.length} router inputs per layer from ${sequences.length} calibration prompts`);
    for (let l = 0; l < a.numLayers; l++) {
      const folded = await foldLayer({ model, source, layer: l, kept: kept[l], removed: removed[l], counts: stats.overall.counts[l], sample: samples[l], routerRows: routerFloats(manifest, trunk, l), log, downRefit: o.downRefit, routerFit: o.routerFit });
      routers.push(folded.router);
      for (const [i, w] of folded.rewritten) rewritten.set(`${l}/${i}`, w);
      merged.push(...folded.records);
    }
  }
  await writeReducedModel(source, manifest, outDir, { name, kept, routers, rewritten });
  return { name, method: o.method, numExperts: keep, kept, merged };
}

const USAGE = 'usage: merge-experts --model <model-folder> --stats <stats.json> --keep <n per layer | fraction> [--method prune|merge] [--calibration <prompts.jsonl>] --out <model-folder> [--name n] [--sample-tokens 8192] [--no-down-refit] [--no-router-fit]';

/** CLI entry: parses the flags, merges, prints what was kept and folded where. */
export async function mergeExpertsCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, stats: { type: 'string' }, keep: { type: 'string' }, method: { type: 'string', default: 'merge' },
      calibration: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' }, 'sample-tokens': { type: 'string' },
      'no-down-refit': { type: 'boolean', default: false }, 'no-router-fit': { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.model || !values.stats || !values.keep || !values.out) throw new MergeInputError(USAGE);
  const sample = values['sample-tokens'] === undefined ? undefined : Number(values['sample-tokens']);
  if (sample !== undefined && !(Number.isInteger(sample) && sample > 0)) throw new MergeInputError(`--sample-tokens must be a positive integer, got "${values['sample-tokens']}"`);
  const r = await mergeExperts({
    model: values.model, stats: values.stats, keep: values.keep, method: values.method as MergeMethod, calibration: values.calibration,
    out: values.out, name: values.name, sampleTokens: sample, downRefit: !values['no-down-refit'], routerFit: !values['no-router-fit'], log: (l) => process.stderr.write(`${l}\n`),
  });
  r.kept.forEach((k, l) => process.stdout.write(`layer ${l}: kept ${k.join(' ')}\n`));
  process.stdout.write(`wrote ${values.out}: ${r.name} (${r.method}, ${r.numExperts} experts per layer)\n`);
}

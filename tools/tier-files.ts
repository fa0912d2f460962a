// `plan --shards ... --write <dir>`: the files that deploy a tier plan. shard-layout.json and hot-set.json go
// to R2 beside the model; wrangler.shard-<i>.toml deploys shard i (the same Worker with ROLE=shard) and
// wrangler.front.toml the front with a service binding per shard. Settings are copied from the project's
// wrangler.toml, read with wrangler's own config reader, so the generated files agree with what deploys today.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { Manifest } from '../src/format/manifest';
import type { KvCacheType } from '../src/engine/kv-cache';
import { hotSetDocument } from '../src/planning/hot-set-file';
import { edgeSizes } from '../src/planning/sizes';
import { SHARD_LAYOUT_OBJECT, shardLayoutDocument, shardNames } from '../src/shard/layout';
import type { TierReport } from './plan-tiers';
import { keepWranglerOffline } from './dev/offline-env';
import { frontConfig, PROJECT_CONFIG, readBaseConfig, shardConfig } from './shard-configs';
import { toToml, type TomlTable } from './toml';

/** Workers vars stop at 5 KB (https://developers.cloudflare.com/workers/platform/limits/#environment-variables). */
const VAR_LIMIT = 5 * 1024;
const MiB = 2 ** 20;

export interface TierFilesInput {
  dir: string;
  manifest: Manifest;
  report: TierReport;
  kvCacheType: KvCacheType;
  /** the front's Worker name (default: the project's wrangler.toml name); shards are <front>-shard-<i> */
  workerName?: string;
  /** MODEL_ID the Worker reads the model by (default: the manifest's name) */
  modelId?: string;
  /** the wrangler.toml to copy settings from (default: the project's) */
  projectConfig?: string;
}

/** Writes the files and returns their paths. */
export async function writeTierFiles(input: TierFilesInput): Promise<string[]> {
  const { manifest, report } = input;
  const { plan } = report;
  keepWranglerOffline();
  const project = await readBaseConfig(input.projectConfig ?? PROJECT_CONFIG);
  const front = input.workerName ?? project.name;
  const modelId = input.modelId ?? manifest.name;
  const names = plan.shards.map((_, i) => shardNames(front, i));
  await mkdir(input.dir, { recursive: true });
  // main relative to the written file, so the folder deploys from wherever the project is checked out
  const main = relative(resolve(input.dir), project.main).split(sep).join('/');
  const files: [string, string][] = [];

  const layout = shardLayoutDocument(manifest.name, plan.shards.map((s, i) => ({ ...names[i], layers: s.layers, head: plan.headShard === i })));
  files.push([SHARD_LAYOUT_OBJECT, json(layout)]);

  const sizes = edgeSizes(manifest);
  const sizesAlike = sizes.expertBytes.flat().every((b) => b === sizes.expertBytes[0][0]);
  const hotSet = hotSetDocument({
    model: manifest.name,
    from: plan.weights === 'statistics' ? 'overall' : 'uniform',
    plan: {
      layers: plan.front.layers,
      q4: plan.front.layers.map(() => []),
      expertBytes: plan.front.bytes,
      fixedBytes: sizes.fixedBytes,
      budgetBytes: sizes.fixedBytes + plan.front.budgetBytes,
      expected: { overall: plan.front.share, perLayer: plan.front.perLayerShare },
      // hottest-first is the best choice when every expert weighs the same; otherwise it may not be
      exact: sizesAlike,
    },
  });
  files.push(['hot-set.json', json(hotSet)]);

  plan.shards.forEach((s, i) => {
    const toml = toToml(
      { ...shardConfig(project, names[i], { MODEL_ID: modelId }), main } as TomlTable,
      [
        `Expert shard ${i} of ${plan.shards.length} for ${manifest.name}: ${s.experts} experts, ${mib(s.bytes)} MiB of heap, ${pct(s.share)} of routed picks.`,
        `Written by \`npm run cli -- plan --shards\`; deploy with \`npx wrangler deploy -c ${`wrangler.shard-${i}.toml`}\`.`,
        `The same Worker as the front (ROLE = "shard"): it loads only its experts, listed in ${SHARD_LAYOUT_OBJECT} in R2.`,
      ],
    );
    files.push([`wrangler.shard-${i}.toml`, toml]);
  });

  const hotExperts = JSON.stringify({ layers: Object.fromEntries(plan.front.layers.flatMap((row, l) => (row.length ? [[String(l), row]] : []))) });
  const hotBudgetMb = Math.max(Math.ceil((plan.front.bytes / MiB) * 1000), Math.floor((plan.front.budgetBytes / MiB) * 1000)) / 1000;
  const frontVars: Record<string, string> = {
    MODEL_ID: modelId,
    KV_CACHE_TYPE: input.kvCacheType,
    ...(report.isolateMemoryMb !== null ? { ISOLATE_MEMORY_MB: String(report.isolateMemoryMb) } : {}),
    // over the var limit, hot-set.json in R2 (which takes precedence anyway) carries the set
    HOT_EXPERTS: plan.front.experts > 0 && hotExperts.length <= VAR_LIMIT ? hotExperts : 'none',
    // the Worker refuses 0 (src/config/env.ts): no room at all is "no limit" on a set of none
    HOT_BUDGET_MB: hotBudgetMb > 0 ? String(hotBudgetMb) : '',
  };
  const frontToml = toToml(
    { ...frontConfig({ ...project, name: front }, names, frontVars), main } as TomlTable,
    [
      `The front Worker of ${manifest.name} with ${plan.shards.length} expert shard(s): ${plan.front.experts} hot experts (${pct(plan.front.share)} of routed picks),`,
      `${pct(plan.shards.reduce((a, s) => a + s.share, 0))} on the shards, ${pct(plan.gpu.share)} on the GPU backend (BACKEND_URL / BACKENDS).`,
      `Written by \`npm run cli -- plan --shards\`; vars are the project's wrangler.toml's (its comments explain them)`,
      `with the plan's SHARD_LAYOUT, MODEL_ID, KV_CACHE_TYPE, HOT_EXPERTS and HOT_BUDGET_MB. Deploy the shards first.`,
    ],
  );
  files.push(['wrangler.front.toml', frontToml]);

  const paths: string[] = [];
  for (const [name, text] of files) {
    const path = join(input.dir, name);
    await writeFile(path, text.endsWith('\n') ? text : text + '\n');
    paths.push(path);
  }
  return paths;
}

/** Indented JSON with each list of numbers (a layer's experts) on one line. */
function json(doc: unknown): string {
  return JSON.stringify(doc, null, 2).replace(/\[\s*((?:-?[\d.e+-]+,\s*)*-?[\d.e+-]+)\s*\]/g, (_, inner: string) => `[${inner.split(/,\s*/).join(', ')}]`);
}

const mib = (b: number) => (b / MiB).toFixed(1);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

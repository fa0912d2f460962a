// `npm run cli -- plan`: the placement report. For a converted model (--model) or a published HF config.json
// (--config, no weights needed): what a Worker isolate must hold, how many hot experts per layer fit in the
// budget at each quantization, and whether the model can run at the edge at all. Arithmetic in placement.ts.
// With --shards, also the tier plan (front, expert shards, GPU; plan-tiers.ts) and, with --write, its files.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseManifest, type Architecture, type Manifest } from '../src/format/manifest';
import { DTYPES, type DType } from '../src/format/quant';
import { checkKvCacheType, DEFAULT_KV_CACHE_TYPE, KV_CACHE_TYPES, type KvCacheType } from '../src/engine/kv-cache';
import { architectureForPlan, ISOLATE_BYTES, place, type Placement, type Quants } from './placement';
import { tierJson, tierReport, tierText, type TierReport } from './plan-tiers';

const USAGE = `usage: npm run cli -- plan (--model <model-folder> | --config <config.json>) [--budget-mb 100]
         [--context <n>] [--quant q8_0,q4_0,f16] [--kv-cache-type ${KV_CACHE_TYPES.join('|')}] [--json]
         [--shards <N|all> [--shard-budget-mb 100] [--stats routing-stats.json] [--head-on-shard]
          [--isolate-memory-mb <n> | --front-hot-mb <n>] [--write <dir> [--worker-name <front>] [--model-id <id>]]]
         (--kv-cache-type defaults to KV_CACHE_TYPE's default, ${DEFAULT_KV_CACHE_TYPE})`;

const MiB = 2 ** 20;
const mb = (b: number) => (b / MiB).toFixed(1);

interface Column {
  label: string;
  p: Placement;
}

export async function planCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' },
      config: { type: 'string' },
      'budget-mb': { type: 'string', default: '100' },
      context: { type: 'string' },
      quant: { type: 'string', default: 'q8_0,q4_0,f16' },
      'kv-cache-type': { type: 'string', default: DEFAULT_KV_CACHE_TYPE },
      json: { type: 'boolean', default: false },
      shards: { type: 'string' },
      'shard-budget-mb': { type: 'string', default: '100' },
      stats: { type: 'string' },
      'isolate-memory-mb': { type: 'string' },
      'front-hot-mb': { type: 'string' },
      'head-on-shard': { type: 'boolean', default: false },
      write: { type: 'string' },
      'worker-name': { type: 'string' },
      'model-id': { type: 'string' },
    },
  });
  if (values.shards === undefined) {
    for (const flag of ['stats', 'isolate-memory-mb', 'front-hot-mb', 'write', 'worker-name', 'model-id'] as const) {
      if (values[flag] !== undefined) throw new Error(`--${flag} goes with --shards\n${USAGE}`);
    }
  }
  if (values['head-on-shard'] && values.shards === undefined) throw new Error(`--head-on-shard goes with --shards\n${USAGE}`);
  if (values.write !== undefined && !values.model) throw new Error(`--write needs --model (the files name the converted model)\n${USAGE}`);
  if ((values.model === undefined) === (values.config === undefined)) throw new Error(`plan needs one of --model / --config\n${USAGE}`);
  const budgetMb = Number(values['budget-mb']);
  if (!(budgetMb > 0)) throw new Error(`--budget-mb takes a positive number, got ${values['budget-mb']}`);
  const quants = values.quant.split(',').map((q) => q.trim()) as DType[];
  for (const q of quants) if (!DTYPES.includes(q)) throw new Error(`--quant: unknown ${q}; one of ${DTYPES.join(', ')}`);

  let name: string;
  let arch: Architecture;
  let manifest: Manifest | null = null;
  let note = '';
  if (values.model) {
    manifest = parseManifest(JSON.parse(await readFile(join(values.model, 'manifest.json'), 'utf8')));
    name = manifest.name;
    arch = manifest.architecture;
  } else {
    const config = JSON.parse(await readFile(values.config!, 'utf8')) as Record<string, unknown>;
    const r = architectureForPlan(config);
    arch = r.arch;
    name = values.config!.replace(/^.*\//, '').replace(/\.json$/, '');
    if (r.sizesOnly) note = `model_type ${String(config.model_type)}: sizes read from config.json; the converter does not support it yet`;
  }
  const context = values.context === undefined ? arch.contextLength : Number(values.context);
  if (!Number.isInteger(context) || context < 1) throw new Error(`--context takes a positive integer, got ${values.context}`);

  const kvCacheType = values['kv-cache-type'] as KvCacheType;
  if (!KV_CACHE_TYPES.includes(kvCacheType)) throw new Error(`--kv-cache-type: unknown ${kvCacheType}; one of ${KV_CACHE_TYPES.join(', ')}`);
  checkKvCacheType(arch, kvCacheType);
  const budget = budgetMb * MiB;
  const columns: Column[] = [];
  if (manifest) {
    const q = manifest.quant;
    columns.push({ label: `as converted (${q.trunk === q.experts ? q.trunk : `${q.trunk}/${q.experts}`})`, p: place(arch, q, budget, { context, tokenizer: manifest.tokenizer !== null, kvCacheType }) });
  }
  for (const q of quants) columns.push({ label: q, p: place(arch, { trunk: q, experts: q } satisfies Quants, budget, { context, tokenizer: manifest ? manifest.tokenizer !== null : true, kvCacheType }) });

  // the tiers plan the front as converted (--model) or at the first --quant (--config)
  let tiers: TierReport | null = null;
  if (values.shards !== undefined) {
    const args = { shards: values.shards, shardBudgetMb: values['shard-budget-mb'], stats: values.stats, isolateMemoryMb: values['isolate-memory-mb'], frontHotMb: values['front-hot-mb'], headOnShard: values['head-on-shard'] };
    tiers = await tierReport(args, arch, manifest, columns[0].p, context, kvCacheType);
  }
  let written: string[] = [];
  if (tiers && values.write !== undefined && manifest) {
    const { writeTierFiles } = await import('./tier-files'); // loads wrangler's config reader: only when writing
    written = await writeTierFiles({ dir: values.write, manifest, report: tiers, kvCacheType, workerName: values['worker-name'], modelId: values['model-id'] });
  }

  if (values.json) {
    process.stdout.write(JSON.stringify({ model: name, architecture: arch, budgetBytes: budget, isolateBytes: ISOLATE_BYTES, placements: columns.map((c) => ({ label: c.label, ...c.p })), ...(tiers ? { tiers: tierJson(tiers) } : {}), ...(values.write !== undefined ? { written } : {}) }) + '\n');
    return;
  }
  process.stdout.write(report(name, arch, columns, budgetMb, context, note, manifest));
  if (tiers) process.stdout.write('\n' + tierText(tiers));
  if (written.length) process.stdout.write(`\nwrote ${written.join(', ')}\n`);
}

function report(name: string, a: Architecture, cols: Column[], budgetMb: number, context: number, note: string, manifest: Manifest | null): string {
  const lines: string[] = [];
  lines.push(`${name} (${a.modelType}): ${a.numLayers} layers x ${a.numExperts} experts (top-${a.topK}), hidden ${a.hiddenSize}, ` +
    `${a.numHeads} heads / ${a.numKvHeads} kv heads x ${a.headDim}, expert FFN ${a.expertFfnSize}` +
    `${a.sharedExpertFfnSize ? `, shared expert FFN ${a.sharedExpertFfnSize}` : ''}, vocab ${a.vocabSize}, context ${a.contextLength}`);
  if (note) lines.push(`note: ${note}`);
  lines.push(`isolate ${mb(ISOLATE_BYTES)} MiB; budget ${budgetMb} MiB; KV cache for ${context} positions; MiB of WASM/JS heap`, '');
  const rows: [string, (p: Placement) => string][] = [
    ['trunk', (p) => mb(p.trunk.total)],
    ['  embeddings', (p) => mb(p.trunk.embedding)],
    ['  attention q/k/v/o', (p) => mb(p.trunk.attention)],
    ['  norms, biases (f32)', (p) => mb(p.trunk.norms)],
    ['  routers (f32)', (p) => mb(p.trunk.routers)],
    ['  shared experts', (p) => mb(p.trunk.shared)],
    ['  output head', (p) => mb(p.trunk.output)],
    [`KV cache (${context} positions, ${cols[0].p.kvCacheType})`, (p) => mb(p.kvCache)],
    ['scratch (one generation)', (p) => mb(p.scratch)],
    ['runtime: JS + WASM (estimate)', (p) => mb(p.runtime)],
    ['tokenizer (estimate)', (p) => mb(p.tokenizer)],
    ['= must hold, no hot expert', (p) => mb(p.fixed)],
    ['load peak (trunk in the heap + a chunk)', (p) => mb(p.loadPeak)],
    ['one expert (heap / in R2)', (p) => `${mb(p.expertHeap)} / ${mb(p.expertStored)}`],
    [`hot experts per layer in ${budgetMb} MiB`, (p) => `${p.hotPerLayer} of ${a.numExperts}`],
    ['  HOT_BUDGET_MB for them', (p) => mb(p.hotBytes)],
    ['  ISOLATE_MEMORY_MB (WASM heap) with them', (p) => mb(p.heapBytes)],
    ['longest context, no hot expert', (p) => String(p.maxContext)],
    ['runs at the edge (128 MiB)', (p) => verdict(p, context)],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length)) + 2;
  const cells = rows.map(([, f]) => cols.map((c) => f(c.p)));
  const widths = cols.map((c, i) => Math.max(c.label.length, ...cells.map((r) => r[i].length)) + 2);
  lines.push(''.padEnd(w0) + cols.map((c, i) => c.label.padStart(widths[i])).join(''));
  rows.forEach(([label], r) => lines.push(label.padEnd(w0) + cells[r].map((v, i) => v.padStart(widths[i])).join('')));
  if (manifest) {
    const stored = manifest.objects['trunk.bin']?.bytes;
    if (stored !== undefined) lines.push('', `trunk.bin in R2: ${mb(stored)} MiB (as converted, computed ${mb(cols[0].p.trunkStored)} MiB)`);
  }
  lines.push(
    '',
    'must hold = trunk + KV cache + scratch + runtime + tokenizer; every concurrent generation adds its own KV',
    'cache (prompt + max_tokens positions) and scratch. Hot experts fill what the budget leaves; the rest are cold',
    '(GPU backend). The load peak counts the trunk in the heap and one chunk of trunk.bin streaming into it.',
  );
  return lines.join('\n') + '\n';
}

function verdict(p: Placement, context: number): string {
  if (p.fitsEdge) return 'yes';
  if (p.maxContext === 0) return 'no: trunk too big';
  if (p.loadPeak > ISOLATE_BYTES) return 'no: load peak';
  return p.maxContext < context ? `ctx <= ${p.maxContext}` : 'no';
}

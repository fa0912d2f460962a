// `npm run cli -- plan-hot-set`: from routing statistics (`profile`) and the model's manifest, the hot set
// that serves the largest expected share of routings at the edge within a byte budget (trunk and shared
// experts included), per layer and overall; with --profiles, one hot set per domain and the skill map.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseManifest, type Manifest } from '../src/format/manifest';
import { hotSetDocument, type PlannedHotSet } from '../src/planning/hot-set-file';
import { planHotSet, type HotSetPlan } from '../src/planning/planner';
import { edgeSizes, totalExpertBytes, type EdgeSizes } from '../src/planning/sizes';
import { buildSkillMap } from '../src/routing/skill-map';
import { hitRates, parseRoutingStats, RoutingStatsError, type RoutingCounts, type RoutingStats } from '../src/routing/stats';

export const MIB = 1024 * 1024; // HOT_BUDGET_MB's unit

export interface PlanRequest {
  manifest: Manifest;
  stats: RoutingStats;
  budgetBytes: number;
  /** plan the top-level hot set from this domain's statistics instead of all of them */
  profile?: string;
  /** also plan one hot set per domain (the Worker's profiles) */
  profiles?: boolean;
  mixedPrecision?: boolean;
}

export function checkStatsFor(manifest: Manifest, stats: RoutingStats): void {
  const a = manifest.architecture;
  if (stats.model !== manifest.name) throw new RoutingStatsError(`the statistics are of model "${stats.model}", the manifest is "${manifest.name}"`);
  if (stats.numLayers !== a.numLayers || stats.numExperts !== a.numExperts) {
    throw new RoutingStatsError(`the statistics are ${stats.numLayers} layers x ${stats.numExperts} experts, the model ${a.numLayers} x ${a.numExperts}`);
  }
}

function countsOf(stats: RoutingStats, domain: string | undefined): RoutingCounts {
  if (domain === undefined) return stats.overall;
  const c = stats.domains[domain];
  if (!c) throw new RoutingStatsError(`no statistics for domain "${domain}"; the file has ${Object.keys(stats.domains).join(', ') || 'none'}`);
  return c;
}

export function planDocument(req: PlanRequest): { doc: PlannedHotSet; sizes: EdgeSizes; plan: HotSetPlan; profiles: Record<string, HotSetPlan> } {
  checkStatsFor(req.manifest, req.stats);
  const sizes = edgeSizes(req.manifest);
  const opts = { budgetBytes: req.budgetBytes, ...(req.mixedPrecision ? { mixedPrecision: {} } : {}) };
  const plan = planHotSet(countsOf(req.stats, req.profile), sizes, opts);
  const profiles: Record<string, HotSetPlan> = {};
  if (req.profiles) for (const d of Object.keys(req.stats.domains).sort()) profiles[d] = planHotSet(req.stats.domains[d], sizes, opts);
  const skillMap = req.profiles ? (req.stats.skillMap ?? buildSkillMap(req.stats.domains)) : undefined;
  const unionBytes = req.profiles ? unionOf(sizes, [plan, ...Object.values(profiles)]) : undefined;
  const doc = hotSetDocument({
    ...(unionBytes !== undefined ? { unionBytes } : {}),
    model: req.manifest.name,
    from: req.profile ?? 'overall',
    plan,
    ...(req.profiles ? { profiles } : {}),
    ...(skillMap ? { skillMap } : {}),
  });
  return { doc, sizes, plan, profiles };
}

/** Bytes of every expert hot in any of the plans (each counted once, at the largest size planned). */
export function unionOf(sizes: EdgeSizes, plans: readonly HotSetPlan[]): number {
  const seen = new Map<string, number>();
  for (const p of plans) {
    p.layers.forEach((row, l) =>
      row.forEach((e) => {
        const b = p.q4[l].includes(e) ? sizes.expertBytesQ4[l][e]! : sizes.expertBytes[l][e];
        seen.set(`${l}/${e}`, Math.max(seen.get(`${l}/${e}`) ?? 0, b));
      }),
    );
  }
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const mib = (b: number) => `${(b / MIB).toFixed(2)} MiB`;

export function formatPlan(req: PlanRequest, r: ReturnType<typeof planDocument>): string {
  const { sizes, plan, profiles } = r;
  const a = req.manifest.architecture;
  const all = totalExpertBytes(sizes);
  const out = [
    `model ${req.manifest.name}: ${a.numLayers} layers x ${a.numExperts} experts (top-${a.topK}); trunk + shared experts ${mib(sizes.fixedBytes)}, routed experts ${mib(all)}`,
    `budget ${mib(req.budgetBytes)}: ${mib(req.budgetBytes - sizes.fixedBytes)} for routed experts (${pct((req.budgetBytes - sizes.fixedBytes) / all)} of them)`,
    `planned from ${req.profile ?? 'all domains'} (${countsOf(req.stats, req.profile).tokens} tokens): ${plan.layers.flat().length} experts hot, ${mib(plan.expertBytes)}${plan.exact ? '' : ' (sizes rounded: within budget, maybe not optimal)'}`,
    '',
    'layer  expected hit rate  hot experts' + (plan.q4.some((q) => q.length) ? ' (q4_0 marked *)' : ''),
  ];
  plan.layers.forEach((row, l) => {
    const names = row.map((e) => (plan.q4[l].includes(e) ? `${e}*` : String(e))).join(', ');
    out.push(`${String(l).padStart(5)}  ${pct(plan.expected.perLayer[l]).padStart(17)}  [${names}]`);
  });
  out.push(`${'all'.padStart(5)}  ${pct(plan.expected.overall).padStart(17)}  (HOT_BUDGET_MB for these experts alone: >= ${(plan.expertBytes / MIB).toFixed(3)})`);
  const domains = Object.keys(req.stats.domains).sort();
  if (domains.length) {
    out.push('', 'expected hit rate per domain:  this hot set' + (req.profiles ? '  its own profile  (profile experts)' : ''));
    for (const d of domains) {
      const own = hitRates(req.stats.domains[d], plan.layers).overall;
      const p = profiles[d];
      out.push(`  ${d.padEnd(28)} ${pct(own).padStart(11)}` + (p ? `  ${pct(p.expected.overall).padStart(16)}  (${p.layers.flat().length}, ${mib(p.expertBytes)})` : ''));
    }
  }
  if (r.doc.plan.unionBytes !== undefined) out.push(`  an isolate holding the hot set and every profile needs ${mib(r.doc.plan.unionBytes)} of experts (+ trunk ${mib(sizes.fixedBytes)})`);
  return out.join('\n');
}

/** Indented JSON with each list of numbers on one line (expert ids, centroid rows), for people to read. */
export function stringifyHotSet(doc: PlannedHotSet): string {
  return JSON.stringify(doc, null, 2).replace(/\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]/g, (_, inner: string) => `[${inner.split(/,\s*/).join(', ')}]`) + '\n';
}

/** CLI: plan-hot-set --model <dir> --stats <file> --budget-mb <n> [--profile <d>] [--profiles] [--mixed-precision] [--out hot-set.json] */
export async function planHotSetCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: 'string' }, stats: { type: 'string' }, 'budget-mb': { type: 'string' }, profile: { type: 'string' },
      profiles: { type: 'boolean', default: false }, 'mixed-precision': { type: 'boolean', default: false }, out: { type: 'string' },
    },
  });
  if (!values.model || !values.stats || !values['budget-mb']) throw new Error('plan-hot-set needs --model <model-folder>, --stats <stats.json> and --budget-mb <n>');
  const budgetMb = Number(values['budget-mb']);
  if (!(budgetMb > 0)) throw new Error(`--budget-mb is a positive number of MiB, got ${values['budget-mb']}`);
  const manifest = parseManifest(JSON.parse(await readFile(join(values.model, 'manifest.json'), 'utf8')));
  const stats = parseRoutingStats(JSON.parse(await readFile(values.stats, 'utf8')));
  const req: PlanRequest = { manifest, stats, budgetBytes: Math.floor(budgetMb * MIB), profile: values.profile, profiles: values.profiles, mixedPrecision: values['mixed-precision'] };
  const r = planDocument(req);
  const json = stringifyHotSet(r.doc);
  if (values.out) {
    await writeFile(values.out, json);
    process.stdout.write(`${formatPlan(req, r)}\nwrote ${values.out}\n`);
  } else {
    // the document on stdout (for a pipe), the report beside it
    process.stderr.write(formatPlan(req, r) + '\n');
    process.stdout.write(json);
  }
}

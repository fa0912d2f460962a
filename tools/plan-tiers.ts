// `npm run cli -- plan --shards <N|all>`: the tier plan for a model, front isolate (hot experts in what its
// trunk and one generation leave), N expert-shard Workers, and the GPU backend for the rest, as a table or
// JSON. The planning is src/planning/tier-plan.ts; the files `--write` produces, tier-files.ts.
import { readFile } from 'node:fs/promises';
import type { Architecture, Manifest } from '../src/format/manifest';
import { generationBytes } from '../src/runtime/admission';
import { MAX_SHARDS } from '../src/shard/layout';
import { SHARD_JS_BYTES, shardExpertRoom, shardScratchBytes } from '../src/planning/shard-memory';
import { edgeSizes } from '../src/planning/sizes';
import { planTiers, type TierPlan } from '../src/planning/tier-plan';
import { parseRoutingStats, type RoutingStats } from '../src/routing/stats';
import type { KvCacheType } from '../src/engine/kv-cache';
import { checkStatsFor } from './plan-hot-set';
import { headBytes, type Placement } from './placement';

const MiB = 2 ** 20;

export interface TierArgs {
  shards: string;
  shardBudgetMb: string;
  stats?: string;
  isolateMemoryMb?: string;
  frontHotMb?: string;
  /** the embedding and output head on shard 0 instead of the front */
  headOnShard?: boolean;
}

/** Where the front's room for hot experts came from, for the report. */
export interface FrontRoom {
  bytes: number;
  how: string;
}

export interface TierReport {
  plan: TierPlan;
  front: FrontRoom;
  /** ISOLATE_MEMORY_MB the front room was planned at (written into its configuration), if given */
  isolateMemoryMb: number | null;
  shard: { budgetBytes: number; jsBytes: number; scratchBytes: number; expertBytes: number };
  stats: { file: string; tokens: number } | null;
  /** heap bytes of the head when a shard holds it; 0: the front does */
  headBytes: number;
  /** the stats the plan came from (hot-set.json records them) */
  routingStats: RoutingStats | null;
}

const positive = (flag: string, v: string | undefined, orZero = false): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0 || (orZero && n === 0 && v.trim() !== ''))) throw new Error(`--${flag} takes a ${orZero ? 'non-negative' : 'positive'} number, got ${v}`);
  return n;
};

/**
 * The front's room for hot experts: --front-hot-mb as given; with --isolate-memory-mb, what admission leaves
 * (ISOLATE_MEMORY_MB minus the trunk and one generation of `context` positions at the KV cache type, as
 * src/runtime/admission.ts counts them); otherwise the table's budget minus its "must hold".
 */
export function frontRoom(arch: Architecture, p: Placement, args: TierArgs, context: number, kvCacheType: KvCacheType): FrontRoom {
  if (args.frontHotMb !== undefined && args.isolateMemoryMb !== undefined) throw new Error('--front-hot-mb and --isolate-memory-mb both set the front\'s room: give one');
  const hotMb = positive('front-hot-mb', args.frontHotMb, true);
  if (hotMb !== undefined) return { bytes: Math.floor(hotMb * MiB), how: `--front-hot-mb ${hotMb}` };
  const isolateMb = positive('isolate-memory-mb', args.isolateMemoryMb);
  if (isolateMb !== undefined) {
    const gen = generationBytes(arch, context, kvCacheType);
    const trunk = p.trunk.total - (args.headOnShard ? headBytes(p) : 0);
    const bytes = Math.max(0, Math.floor(isolateMb * MiB) - trunk - gen);
    return { bytes, how: `ISOLATE_MEMORY_MB ${isolateMb} - trunk ${mb(trunk)}${args.headOnShard ? ' (head on a shard)' : ''} - one ${context}-position generation at ${kvCacheType} KV ${mb(gen)}` };
  }
  return { bytes: Math.max(0, p.budget - p.fixed), how: `--budget-mb ${mb(p.budget)} - must hold ${mb(p.fixed)}` };
}

export async function tierReport(args: TierArgs, arch: Architecture, manifest: Manifest | null, p: Placement, context: number, kvCacheType: KvCacheType): Promise<TierReport> {
  const shards = args.shards === 'all' ? 'all' : Number(args.shards);
  if (shards !== 'all' && !(Number.isInteger(shards) && shards >= 0 && shards <= MAX_SHARDS)) throw new Error(`--shards takes 0..${MAX_SHARDS} or all, got ${args.shards}`);
  const budgetBytes = Math.floor(positive('shard-budget-mb', args.shardBudgetMb)! * MiB);
  const room = shardExpertRoom(arch, budgetBytes);
  if (room <= 0) throw new Error(`--shard-budget-mb ${args.shardBudgetMb}: a shard's JS heap and call scratch alone take ${mb(budgetBytes - room)} MiB`);

  let routingStats: RoutingStats | null = null;
  if (args.stats !== undefined) {
    if (!manifest) throw new Error('--stats needs --model (statistics belong to a converted model)');
    routingStats = parseRoutingStats(JSON.parse(await readFile(args.stats, 'utf8')));
    checkStatsFor(manifest, routingStats);
  }
  // with --config there are no tensors to read: every expert has the placement's size
  const expertBytes = manifest ? edgeSizes(manifest).expertBytes : Array.from({ length: arch.numLayers }, () => new Array<number>(arch.numExperts).fill(p.expertHeap));
  const front = frontRoom(arch, p, args, context, kvCacheType);
  const plan = planTiers({ expertBytes, counts: routingStats?.overall ?? null, frontBytes: front.bytes, shardBytes: room, shards, headBytes: args.headOnShard ? headBytes(p) : 0 }, MAX_SHARDS);
  return {
    plan,
    front,
    isolateMemoryMb: positive('isolate-memory-mb', args.isolateMemoryMb) ?? null,
    shard: { budgetBytes, jsBytes: SHARD_JS_BYTES, scratchBytes: shardScratchBytes(arch), expertBytes: room },
    headBytes: args.headOnShard ? headBytes(p) : 0,
    stats: routingStats && args.stats ? { file: args.stats, tokens: routingStats.overall.tokens } : null,
    routingStats,
  };
}

/** The report as JSON: the plan, with every tier's experts per layer. */
export function tierJson(r: TierReport): Record<string, unknown> {
  const { plan } = r;
  return {
    front: { room: r.front, ...plan.front },
    shard: r.shard,
    shards: plan.shards.map((s, i) => ({ binding: `SHARD_${i}`, ...s })),
    gpu: plan.gpu,
    weights: plan.weights,
    ...(r.stats ? { stats: r.stats } : {}),
    balance: plan.balance,
    headShard: plan.headShard,
    allAtEdge: plan.allAtEdge,
    maxShards: MAX_SHARDS,
  };
}

export function tierText(r: TierReport): string {
  const { plan } = r;
  const lines: string[] = [];
  const weights = r.stats ? `from ${r.stats.file} (${r.stats.tokens} tokens)` : 'uniform (no --stats: every expert as likely)';
  lines.push(`Tiers: where each routed expert runs; shares of routed picks ${weights}`);
  lines.push(`front room for hot experts: ${mb(r.front.bytes)} MiB (${r.front.how})`);
  lines.push(`shard isolate: ${mb(r.shard.budgetBytes)} MiB = experts <= ${mb(r.shard.expertBytes)} + one call's scratch ${mb(r.shard.scratchBytes)} + JS heap ${mb(r.shard.jsBytes)} (measured, SHARD_JS_BYTES) MiB`, '');
  const rows: [string, number, number, number][] = [
    ['front (hot set)', plan.front.experts, plan.front.bytes, plan.front.share],
    ...plan.shards.map((s, i): [string, number, number, number] => [`shard SHARD_${i}`, s.experts, s.bytes, s.share]),
    ['GPU backend', plan.gpu.experts, plan.gpu.bytes, plan.gpu.share],
  ];
  const total = plan.front.experts + plan.shards.reduce((s, t) => s + t.experts, 0) + plan.gpu.experts;
  lines.push(`${'tier'.padEnd(18)}${'experts'.padStart(9)}${'MiB'.padStart(9)}${'picks'.padStart(9)}`);
  for (const [label, n, bytes, share] of rows) lines.push(`${label.padEnd(18)}${String(n).padStart(9)}${mb(bytes).padStart(9)}${pct(share).padStart(9)}`);
  lines.push(`${'all'.padEnd(18)}${String(total).padStart(9)}`, '');
  if (plan.headShard !== null) lines.push(`the embedding and output head (${mb(r.headBytes)} MiB) is on shard SHARD_${plan.headShard}, not on the front`);
  if (plan.shards.length > 1) {
    lines.push(`shard balance: per layer, the busiest shard gets ${plan.balance.mean.toFixed(2)}x an even share of the shards' picks on average, ${plan.balance.worst.toFixed(2)}x at worst`);
  }
  const all = plan.allAtEdge;
  if (all) {
    if (all.limit === null) lines.push(`all experts at the edge: ${all.needed} shard(s) of ${mb(r.shard.budgetBytes)} MiB (at most ${MAX_SHARDS})`);
    else if (all.limit === 'max-shards') {
      lines.push(`all experts at the edge would take ${all.needed} shards of ${mb(r.shard.budgetBytes)} MiB: over MAX_SHARDS (${MAX_SHARDS}, service bindings one request may invoke);`,
        `planned ${plan.shards.length}, the rest stays on the GPU (raise --shard-budget-mb, or quantize the experts further)`);
    } else lines.push(`all experts at the edge: impossible, one expert is over a shard's ${mb(r.shard.expertBytes)} MiB of expert room (raise --shard-budget-mb)`);
  }
  return lines.join('\n') + '\n';
}

const mb = (b: number) => (b / MiB).toFixed(1);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

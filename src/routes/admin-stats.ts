// GET /admin/stats: this isolate's routing statistics of the served model (per layer x expert counts of what
// the routers asked for, overall and per profile) in the profiler's schema, so `plan-hot-set --stats` reads
// it as it reads `profile`'s output. POST /admin/hot-set/plan: runs the planner here over those statistics
// (or over statistics in the body) within ?budget_mb= and returns a document PUT /admin/hot-set takes.
// Statistics are per isolate and in memory: each isolate counts the traffic it served since it started.
import { appConfig } from '../config/env';
import { InvalidRequestError } from '../common/errors';
import { readJsonBody } from '../http/body';
import { hotSetLayersJson } from '../hotset/resolve';
import { emptyCounts, parseRoutingStats, ROUTING_STATS_FORMAT, RoutingStatsError, type RoutingStats } from '../routing/stats';
import { planUnion } from '../planning/union-plan';
import type { HotSetControl } from '../hotset/control';
import { hotSetOf } from './admin';
import type { AppContext, ModelProvider } from './inference';

const MIB = 1024 * 1024;

/** The isolate's statistics of `model`, or empty counts before its first generation. */
function liveStats(model: HotSetControl): RoutingStats {
  const a = model.manifest.architecture;
  const skillMap = model.tier?.skillMap ?? null;
  return (
    model.routing?.stats(skillMap) ?? {
      format: ROUTING_STATS_FORMAT,
      model: model.manifest.name,
      numLayers: a.numLayers,
      numExperts: a.numExperts,
      topK: a.topK,
      overall: emptyCounts(a.numLayers, a.numExperts),
      domains: {},
      ...(skillMap ? { skillMap } : {}),
    }
  );
}

export function getStats(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const { hot: model } = await hotSetOf(c, provider);
    // `scope` and `since` say what the counts cover; readers of the schema ignore them
    return c.json({ ...liveStats(model), scope: 'isolate', since: model.routing?.since ?? null });
  };
}

export function planHotSetRoute(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const cfg = appConfig(c.env);
    const { hot: model } = await hotSetOf(c, provider);
    const a = model.manifest.architecture;
    const hasBody = c.req.raw.body !== null && c.req.header('content-length') !== '0';
    const body = hasBody ? await readJsonBody(c.req.raw, cfg.maxBodyBytes) : {};
    let stats: RoutingStats;
    let from: 'isolate' | 'body';
    if (Object.keys(body).length === 0) {
      stats = liveStats(model);
      from = 'isolate';
    } else {
      try {
        stats = parseRoutingStats(body);
      } catch (e) {
        throw new InvalidRequestError((e as Error).message, null, 'invalid_routing_stats');
      }
      if (stats.model !== model.manifest.name || stats.numLayers !== a.numLayers || stats.numExperts !== a.numExperts) {
        throw new InvalidRequestError(new RoutingStatsError(`the statistics are of ${stats.model} (${stats.numLayers} x ${stats.numExperts}), the served model is ${model.manifest.name} (${a.numLayers} x ${a.numExperts})`).message, 'model', 'invalid_routing_stats');
      }
      from = 'body';
    }
    const budget = budgetOf(c.req.query('budget_mb'), model);
    const profiles = !/^(0|false|no)$/i.test(c.req.query('profiles') ?? '');
    const plan = planUnion(stats, model.manifest, { hotBudgetBytes: budget, profiles });
    return c.json({
      hot_set: plan.doc,
      budget_bytes: budget,
      resident: { layers: hotSetLayersJson({ layers: plan.union, bytes: plan.unionBytes, count: 0 }), experts: plan.union.flat().length, bytes: plan.unionBytes },
      per_profile_bytes: plan.perProfileBytes,
      expected: plan.expected,
      stats: { from, tokens: stats.overall.tokens, prompts: stats.overall.prompts },
    });
  };
}

/** ?budget_mb= (MiB of hot experts, HOT_BUDGET_MB's unit), at most HOT_BUDGET_MB; default HOT_BUDGET_MB, else what is resident now. */
function budgetOf(q: string | undefined, model: HotSetControl): number {
  const cap = model.budgetBytes;
  if (q === undefined || q.trim() === '') return cap ?? model.hotVersion.hotSet.bytes;
  const mb = Number(q);
  if (!Number.isFinite(mb) || mb < 0) throw new InvalidRequestError(`budget_mb must be a number of MiB >= 0, got ${JSON.stringify(q)}`, 'budget_mb', 'invalid_value');
  const bytes = Math.floor(mb * MIB);
  if (cap !== null && bytes > cap) {
    throw new InvalidRequestError(`budget_mb=${q} is over this deployment's HOT_BUDGET_MB (${(cap / MIB).toFixed(3)} MiB): the plan could not be applied`, 'budget_mb', 'invalid_value');
  }
  return bytes;
}

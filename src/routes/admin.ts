// GET|PUT /admin/hot-set: read and change the hot set at run time. PUT takes a preset, {"layers"}, or a
// planned document with profiles and a skill map; it validates against the manifest and HOT_BUDGET_MB (the
// union of the set and its profiles; 400), writes hot-set.json in R2 as the next version, and swaps it into
// this isolate at once; other isolates pick it up within HOT_SET_REFRESH_MS. Bearer ADMIN_TOKEN, compared in
// constant time; GET /admin (the dashboard page) also takes it as ?token=.
import type { MiddlewareHandler } from 'hono';
import { appConfig, type AppEnv } from '../config/env';
import { MoeError } from '../common/errors';
import { readJsonBody } from '../http/body';
import { AuthenticationError } from '../http/errors';
import { tierOf } from '../hotset/profiles';
import { hotSetLayersJson } from '../hotset/resolve';
import { parseHotSetPut } from '../hotset/spec';
import type { HotSetControl } from '../hotset/control';
import { r2HotSetStore } from '../hotset/store';
import { dashboardUnauthorized } from './admin-dashboard';
import { waitUntilOf, type AppContext, type ModelProvider } from './inference';

class AdminDisabledError extends MoeError {
  constructor() {
    super('The admin routes are disabled: set the ADMIN_TOKEN secret to enable them', { status: 403, code: 'admin_disabled', type: 'permission_error' });
  }
}

export const requireAdmin: MiddlewareHandler<{ Bindings: AppEnv }> = async (c, next) => {
  const token = appConfig(c.env).adminToken;
  if (!token) throw new AdminDisabledError();
  const match = /^Bearer\s+(.+)$/i.exec((c.req.header('authorization') ?? '').trim());
  // the dashboard page is opened from a browser address bar, which cannot send a header: ?token= there only
  const query = !match && c.req.method === 'GET' && c.req.path === '/admin' ? c.req.query('token') : undefined;
  const given = match ? match[1]! : query;
  if (!given || !(await constantTimeEqual(given.trim(), token))) {
    const page = dashboardUnauthorized(c);
    if (page) return page;
    throw new AuthenticationError(given ? 'Incorrect admin token provided.' : 'The admin routes need Authorization: Bearer <ADMIN_TOKEN>');
  }
  return next();
};

// Digests first: equal lengths whatever the inputs, so neither length nor a matching prefix shows in the time.
async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [da, db] = await Promise.all([a, b].map((s) => crypto.subtle.digest('SHA-256', enc.encode(s))));
  const x = new Uint8Array(da!);
  const y = new Uint8Array(db!);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

/** The served model's hot set (a model that keeps every expert resident has none: 500). */
export async function hotSetOf(c: AppContext, provider: ModelProvider): Promise<{ id: string; hot: HotSetControl }> {
  const model = await provider.getModel(c.env, waitUntilOf(c));
  if (!model.hotSet) throw new Error('this model has no hot set');
  return { id: model.id, hot: model.hotSet };
}

function describe(id: string, model: HotSetControl, stored: { version: number; updatedAt: string } | null) {
  const v = model.hotVersion;
  const a = model.manifest.architecture;
  return {
    model: id,
    // what R2 holds (null: none stored, HOT_EXPERTS applies)
    stored: stored ? { version: stored.version, updated_at: stored.updatedAt } : null,
    // what this isolate runs
    version: v.id,
    source: v.source,
    layers: hotSetLayersJson(v.hotSet),
    experts: v.hotSet.count,
    experts_total: a.numLayers * a.numExperts,
    bytes: v.hotSet.bytes,
    budget_bytes: model.budgetBytes,
    // tier one: the named hot sets (all resident, in `layers`) and whether a skill map picks among them
    ...profilesOf(v.hotSet),
  };
}

function profilesOf(h: HotSetControl['hotVersion']['hotSet']) {
  const tier = tierOf(h);
  if (!tier) return { profiles: null, skill_map: null };
  return {
    base_layers: hotSetLayersJson(tier.base),
    profiles: Object.fromEntries([...tier.profiles].map(([name, p]) => [name, { layers: hotSetLayersJson(p), experts: p.count, bytes: p.bytes }])),
    skill_map: tier.skillMap ? { profiles: Object.keys(tier.skillMap.centroids).sort(), layers: [0] } : null,
  };
}

export function getHotSet(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const { id, hot: model } = await hotSetOf(c, provider);
    await model.refreshIfDue(true);
    const stored = await r2HotSetStore(c.env.MODELS, appConfig(c.env).modelKeyPrefix).read().catch(() => null);
    return c.json(describe(id, model, stored?.doc ?? null));
  };
}

export function putHotSet(provider: ModelProvider) {
  return async (c: AppContext): Promise<Response> => {
    const cfg = appConfig(c.env);
    const body = parseHotSetPut(await readJsonBody(c.req.raw, cfg.maxBodyBytes));
    const { id, hot: model } = await hotSetOf(c, provider);
    const hotSet = model.resolveHotSetBody(body); // 400 on unknown layers/experts, duplicates, over budget (the union)
    const tier = hotSet.tier;
    const stored = await r2HotSetStore(c.env.MODELS, cfg.modelKeyPrefix).write({
      model: model.manifest.name,
      layers: hotSetLayersJson(tier ? tier.base : hotSet),
      bytes: hotSet.bytes,
      ...(tier ? { profiles: Object.fromEntries([...tier.profiles].map(([name, p]) => [name, { layers: hotSetLayersJson(p), bytes: p.bytes }])) } : {}),
      ...(tier?.skillMap ? { skillMap: tier.skillMap } : {}),
      ...(body.plan ? { plan: body.plan } : {}),
    });
    await model.applyStored(stored);
    return c.json(describe(id, model, stored.doc));
  };
}

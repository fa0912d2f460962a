// Routing statistics and tier-one profiles in the Worker: GET /admin/stats counts what the routers asked for
// (per layer x expert, overall and per profile, in the profiler's schema) and /metrics exposes the same
// counts; PUT /admin/hot-set takes a planned document with profiles and a skill map, keeps the union of
// its sets resident within HOT_BUDGET_MB, and requests get a profile by name (moe.profile, unknown: 400) or
// from the skill map, reported in usage.moe.profile; POST /admin/hot-set/plan plans from the isolate's own
// statistics; HOT_EXPERTS=auto plans from routing-stats.json beside the model; GET /admin serves the page.
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { parseManifest, type Manifest } from '../../src/format/manifest';
import { ROUTING_STATS_OBJECT } from '../../src/planning/auto-hot-set';
import { buildSkillMap } from '../../src/routing/skill-map';
import { parseRoutingStats, ROUTING_STATS_FORMAT, type RoutingCounts, type RoutingStats } from '../../src/routing/stats';
import { planUnion } from '../../src/planning/union-plan';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { callWithEnv, expectOpenAIError } from './helpers';

const token = inject('backend').adminToken;
const auth = { authorization: `Bearer ${token}` };
const STATS_MODEL = 'stats';
const AUTO_MODEL = 'stats-auto';
const FILL_MODEL = 'stats-fill';

let manifest: Manifest;
let L = 0;
let E = 0;
let K = 0;
let expertBytes = 0;

async function copyModel(to: string): Promise<void> {
  const from = `${env.MODEL_PREFIX}/${env.MODEL_ID}/`;
  for (const o of (await env.MODELS.list({ prefix: from })).objects) {
    if (o.key.endsWith('/hot-set.json')) continue;
    await env.MODELS.put(`${env.MODEL_PREFIX}/${to}/${o.key.slice(from.length)}`, await (await env.MODELS.get(o.key))!.arrayBuffer());
  }
}

beforeAll(async () => {
  await copyModel(STATS_MODEL);
  await copyModel(AUTO_MODEL);
  await copyModel(FILL_MODEL);
  manifest = parseManifest(JSON.parse(await (await env.MODELS.get(`${env.MODEL_PREFIX}/${env.MODEL_ID}/manifest.json`))!.text()));
  ({ numLayers: L, numExperts: E, topK: K } = manifest.architecture);
  const one = await loadModelFromR2({ ...env, MODEL_ID: STATS_MODEL, HOT_EXPERTS: '{"layers": {"0": [0]}}' });
  expertBytes = one.hotVersion.hotSet.bytes;
});

const VARS = { MODEL_ID: STATS_MODEL };

function request(method: string, path: string, body?: unknown, vars: Record<string, string> = {}, headers: Record<string, string> = auth): Promise<Response> {
  return callWithEnv({ ...VARS, ...vars }, path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

async function complete(prompt: string, moe: Record<string, unknown> = {}, vars: Record<string, string> = {}): Promise<any> {
  const res = await request('POST', '/v1/completions', { model: vars.MODEL_ID ?? STATS_MODEL, prompt, max_tokens: 5, temperature: 0, moe: { policy: 'substitute', ...moe } }, vars, {});
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as any).usage;
}

async function stats(vars: Record<string, string> = {}): Promise<RoutingStats & { scope: string }> {
  const res = await request('GET', '/admin/stats', undefined, vars);
  expect(res.status).toBe(200);
  const json = (await res.json()) as any;
  parseRoutingStats(json); // the profiler's schema: plan-hot-set --stats reads it
  return json;
}

const sum = (c: RoutingCounts) => c.counts.flat().reduce((a, b) => a + b, 0);

/** Synthetic statistics of two kinds of traffic: "low" routes to experts 0..E/2-1, "high" to the rest. */
function twoDomains(): RoutingStats {
  const counts = (lo: boolean): RoutingCounts => {
    const tokens = 100;
    const half = E / 2;
    const rows = Array.from({ length: L }, () => Array.from({ length: E }, (_, e) => ((e < half) === lo ? ((tokens * K) / half) : 0)));
    return { tokens, prompts: 10, counts: rows };
  };
  const low = counts(true);
  const high = counts(false);
  const domains = { low, high };
  return {
    format: ROUTING_STATS_FORMAT,
    model: manifest.name,
    numLayers: L,
    numExperts: E,
    topK: K,
    overall: { tokens: 200, prompts: 20, counts: low.counts.map((r, l) => r.map((v, e) => v + high.counts[l][e])) },
    domains,
    skillMap: buildSkillMap(domains)!,
  };
}

describe('GET /admin/stats and /metrics', () => {
  it('count every routing the routers asked for, before the cold policy: the same total as usage.moe', async () => {
    const before = await stats();
    expect(before).toMatchObject({ format: ROUTING_STATS_FORMAT, numLayers: L, numExperts: E, topK: K, scope: 'isolate' });
    const usages = [];
    for (const p of ['Once upon a time', 'def add(a, b):', '12 + 30 =']) usages.push(await complete(p));
    const after = await stats();
    const routings = usages.reduce((s, u) => s + u.moe.hot_hits + u.moe.cold_calls, 0);
    expect(sum(after.overall) - sum(before.overall)).toBe(routings);
    // every token passes every layer once: prompt + completion - 1 (the last sampled token is not fed back)
    expect(after.overall.tokens - before.overall.tokens).toBe(usages.reduce((s, u) => s + u.prompt_tokens + u.completion_tokens - 1, 0));
    expect(after.overall.prompts - before.overall.prompts).toBe(3);
    // the hot set here is HOT_EXPERTS=50%: the routings of resident experts are exactly the hot hits
    const hot = ((await (await request('GET', '/admin/hot-set')).json()) as any).layers as Record<string, number[]>;
    const hotRoutings = (s: RoutingStats) => s.overall.counts.reduce((a, row, l) => a + hot[l].reduce((b, e) => b + row[e], 0), 0);
    expect(hotRoutings(after) - hotRoutings(before)).toBe(usages.reduce((s, u) => s + u.moe.hot_hits, 0));
  });

  it('/metrics has one moe_expert_routings_total series per layer x expert with the same counts', async () => {
    await complete('The river runs');
    const s = await stats();
    const text = await (await request('GET', '/metrics', undefined, {}, {})).text();
    for (const [l, e] of [[0, 0], [L - 1, E - 1], [1, 3]]) {
      const m = new RegExp(`^moe_expert_routings_total\\{model="${STATS_MODEL}",profile="",layer="${l}",expert="${e}"\\} (\\d+)$`, 'm').exec(text);
      expect(m, `layer ${l} expert ${e}`).not.toBeNull();
      expect(Number(m![1])).toBe(s.overall.counts[l][e]);
    }
    expect(text).toMatch(new RegExp(`^moe_routed_tokens_total\\{model="${STATS_MODEL}",profile=""\\} ${s.overall.tokens}$`, 'm'));
  });
});

describe('profiles (tier one)', () => {
  it('PUT takes a planned document: profiles and skill map stored, their union resident and checked against HOT_BUDGET_MB', async () => {
    const doc = planUnion(twoDomains(), manifest, { hotBudgetBytes: 4 * expertBytes * L, profiles: true }).doc;
    expect(Object.keys(doc.profiles!).sort()).toEqual(['high', 'low']);

    // the union of both profiles is every expert: over a budget of half of them
    const half = String((L * E * expertBytes) / 2 / 2 ** 20);
    const wide = { ...doc, profiles: { low: { layers: Object.fromEntries(Array.from({ length: L }, (_, l) => [String(l), [0, 1, 2, 3]])) }, high: { layers: Object.fromEntries(Array.from({ length: L }, (_, l) => [String(l), [4, 5, 6, 7]])) } } };
    const over = await expectOpenAIError(await request('PUT', '/admin/hot-set', wide, { HOT_BUDGET_MB: half }), 400, { code: 'hot_set_over_budget', param: 'profiles' });
    expect(over.message).toMatch(/profiles are all resident/);
    await expectOpenAIError(await request('PUT', '/admin/hot-set', { ...doc, profiles: { ...doc.profiles, 'bad name!': { layers: {} } } }), 400, { param: 'profiles.bad name!' });
    await expectOpenAIError(await request('PUT', '/admin/hot-set', { ...doc, profiles: { ...doc.profiles, low: { layers: { '0': [E] } } } }), 400, { param: 'profiles.low.layers.0[0]' });
    await expectOpenAIError(await request('PUT', '/admin/hot-set', { ...doc, profiles: { low: doc.profiles!.low } }), 400, { param: 'skillMap.centroids.high' });
    await expectOpenAIError(await request('PUT', '/admin/hot-set', { ...doc, model: 'another' }), 400, { param: 'model' });

    // the planned one: both profiles and the top-level set within four experts per layer, so some experts stay cold
    const put = await request('PUT', '/admin/hot-set', doc);
    expect(put.status).toBe(200);
    const body = (await put.json()) as any;
    expect(body).toMatchObject({ source: 'r2', skill_map: { profiles: ['high', 'low'], layers: [0] } });
    expect(body.experts).toBeLessThanOrEqual(4 * L);
    expect(body.bytes).toBeLessThanOrEqual(4 * L * expertBytes);
    for (const name of ['low', 'high']) {
      for (let l = 0; l < L; l++) for (const e of body.profiles[name].layers[l]) expect(body.layers[l]).toContain(e); // every profile is resident
    }
    expect(body.profiles.low.layers['0'].every((e: number) => e < E / 2)).toBe(true);
    const stored = JSON.parse(await (await env.MODELS.get(`${env.MODEL_PREFIX}/${STATS_MODEL}/hot-set.json`))!.text());
    expect(Object.keys(stored.profiles).sort()).toEqual(['high', 'low']);
    expect(Object.keys(stored.skillMap.centroids).sort()).toEqual(['high', 'low']);
  });

  it('moe.profile names one (reported in usage.moe.profile); an unknown one is 400 unknown_profile', async () => {
    expect((await complete('Once upon a time', { profile: 'high' })).moe.profile).toBe('high');
    const res = await request('POST', '/v1/completions', { model: STATS_MODEL, prompt: 'Hi', max_tokens: 2, moe: { profile: 'prose' } }, {}, {});
    const e = await expectOpenAIError(res, 400, { param: 'moe.profile', code: 'unknown_profile' });
    expect(e.message).toMatch(/'high', 'low'/);
  });

  it('without moe.profile the skill map picks one from the prompt, the same under every cold policy', async () => {
    for (const prompt of ['Once upon a time', 'def add(a, b):\n    return a + b', '17 * 3 = 51']) {
      const picks = new Set<string>();
      for (const policy of ['substitute', 'drop', 'remote']) {
        const u = await complete(prompt, { policy });
        expect(['high', 'low']).toContain(u.moe.profile);
        picks.add(u.moe.profile);
      }
      expect(picks.size, prompt).toBe(1);
    }
  });

  it('statistics are kept per profile: the profiles add up to the traffic that had one', async () => {
    const before = await stats();
    const u = await complete('A quiet evening', { profile: 'low' });
    const after = await stats();
    expect(after.domains.low.tokens - (before.domains.low?.tokens ?? 0)).toBe(u.prompt_tokens + u.completion_tokens - 1);
    expect(after.overall.tokens - before.overall.tokens).toBe(u.prompt_tokens + u.completion_tokens - 1);
    const text = await (await request('GET', '/metrics', undefined, {}, {})).text();
    expect(text).toMatch(new RegExp(`^moe_expert_routings_total\\{model="${STATS_MODEL}",profile="low",layer="0",expert="0"\\} ${after.domains.low.counts[0][0]}$`, 'm'));
  });
});

describe('POST /admin/hot-set/plan', () => {
  it('plans from this isolate\'s statistics within budget_mb; PUT applies the plan as is', async () => {
    const mb = (3 * L * expertBytes) / 2 ** 20;
    const res = await request('POST', `/admin/hot-set/plan?budget_mb=${mb}`);
    expect(res.status).toBe(200);
    const plan = (await res.json()) as any;
    expect(plan.stats.from).toBe('isolate');
    expect(plan.stats.tokens).toBeGreaterThan(0);
    expect(plan.resident.bytes).toBeLessThanOrEqual(3 * L * expertBytes);
    expect(plan.resident.experts).toBeGreaterThan(0);
    expect(Object.keys(plan.hot_set.profiles ?? {}).sort()).toEqual(['high', 'low']); // traffic of both profiles
    const put = await request('PUT', '/admin/hot-set', plan.hot_set);
    expect(put.status).toBe(200);
    expect(((await put.json()) as any).layers).toEqual(plan.resident.layers);
  });

  it('takes statistics in the body (the profiler\'s file); refuses a budget over HOT_BUDGET_MB', async () => {
    const res = await request('POST', `/admin/hot-set/plan?budget_mb=${(2 * L * expertBytes) / 2 ** 20}&profiles=0`, twoDomains());
    const plan = (await res.json()) as any;
    expect(plan.stats).toMatchObject({ from: 'body', tokens: 200 });
    expect(plan.hot_set.profiles).toBeUndefined();
    expect(plan.resident.experts).toBe(2 * L);
    await expectOpenAIError(await request('POST', '/admin/hot-set/plan?budget_mb=100', undefined, { MODEL_ID: FILL_MODEL, HOT_EXPERTS: 'none', HOT_BUDGET_MB: '1' }), 400, { param: 'budget_mb' });
    await expectOpenAIError(await request('POST', '/admin/hot-set/plan', { ...twoDomains(), numLayers: L + 1 }), 400, { code: 'invalid_routing_stats' });
  });
});

describe('HOT_EXPERTS=auto', () => {
  it('plans from routing-stats.json beside the model within HOT_BUDGET_MB, profiles and skill map included', async () => {
    const s = twoDomains();
    await env.MODELS.put(`${env.MODEL_PREFIX}/${AUTO_MODEL}/${ROUTING_STATS_OBJECT}`, JSON.stringify(s));
    const budget = 4 * L * expertBytes;
    const vars = { MODEL_ID: AUTO_MODEL, HOT_EXPERTS: 'auto', HOT_BUDGET_MB: String(budget / 2 ** 20) };
    const want = planUnion(s, manifest, { hotBudgetBytes: budget, profiles: true });
    const hot = (await (await request('GET', '/admin/hot-set', undefined, vars)).json()) as any;
    expect(hot).toMatchObject({ source: 'env', version: 0, layers: Object.fromEntries(want.union.map((r, l) => [String(l), r])) });
    expect(Object.keys(hot.profiles).sort()).toEqual(['high', 'low']);
    expect(hot.bytes).toBeLessThanOrEqual(budget);
    expect((await complete('Once upon a time', { profile: 'low' }, vars)).moe.profile).toBe('low');
  });

  it('without statistics it fills the budget as before', async () => {
    const hot = (await (await request('GET', '/admin/hot-set', undefined, { HOT_EXPERTS: 'auto', HOT_BUDGET_MB: String((2 * L * expertBytes) / 2 ** 20), MODEL_ID: FILL_MODEL })).json()) as any;
    expect(hot).toMatchObject({ experts: 2 * L, profiles: null });
  });
});

describe('GET /admin', () => {
  it('serves the self-contained dashboard (bearer or ?token=), with a strict CSP and no secret in it', async () => {
    for (const [path, headers] of [['/admin', auth], [`/admin?token=${encodeURIComponent(token)}`, {}]] as const) {
      const res = await request('GET', path, undefined, {}, headers);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'nonce-/);
      const html = await res.text();
      expect(html).toContain('id="heatmap"');
      expect(html).not.toContain(token);
      expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/); // no external assets
    }
  });

  it('a wrong token: JSON 401 for API clients, the page (which asks for the token) with 401 for a browser', async () => {
    await expectOpenAIError(await request('GET', '/admin?token=nope', undefined, {}, {}), 401, { type: 'authentication_error' });
    const res = await request('GET', '/admin', undefined, {}, { accept: 'text/html,application/xhtml+xml' });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('id="login-form"');
    // ?token= is for the page only
    await expectOpenAIError(await request('GET', `/admin/stats?token=${encodeURIComponent(token)}`, undefined, {}, {}), 401);
  });
});

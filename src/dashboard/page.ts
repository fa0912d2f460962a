// The admin dashboard: one self-contained HTML page (inline CSS and JS, no external assets) that reads
// GET /admin/stats and GET /admin/hot-set with the admin token and draws the expert-usage heatmap (layers x
// experts) with the resident hot set outlined, hit rates overall and per layer, a profile selector, and a
// planner panel (POST /admin/hot-set/plan, then PUT /admin/hot-set). The token arrives once as ?token=, is
// kept in sessionStorage (this tab only) and removed from the address bar; every call sends it as a bearer header.

export const TOKEN_KEY = 'moe-edge-admin-token';

const STYLE = `
:root { --ink:#1d2733; --muted:#5b6b7c; --line:#d9e0e7; --bg:#f5f7fa; --card:#fff; --hot:#d9480f; --plan:#1c7ed6; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; color:var(--ink); background:var(--bg); }
header { display:flex; align-items:baseline; gap:16px; padding:14px 24px; background:#1d2733; color:#fff; }
header h1 { margin:0; font-size:18px; font-weight:600; }
header .sub { color:#b8c4d0; font-size:13px; }
main { padding:18px 24px 28px; display:grid; grid-template-columns:minmax(0,1fr) 300px; gap:18px; max-width:1400px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; }
.card h2 { margin:0 0 10px; font-size:14px; font-weight:600; }
.kpis { display:grid; grid-template-columns:repeat(4,minmax(0,1fr)); gap:12px; grid-column:1 / -1; }
.kpi .v { font-size:24px; font-weight:650; font-variant-numeric:tabular-nums; }
.kpi .l { color:var(--muted); font-size:12px; }
.toolbar { display:flex; gap:12px; align-items:center; margin-bottom:12px; flex-wrap:wrap; }
label { color:var(--muted); font-size:12px; }
select, input { font:inherit; padding:4px 8px; border:1px solid var(--line); border-radius:6px; background:#fff; }
button { font:inherit; padding:6px 12px; border-radius:6px; border:1px solid #1c7ed6; background:#1c7ed6; color:#fff; cursor:pointer; }
button.secondary { background:#fff; color:#1c7ed6; }
button:disabled { opacity:.5; cursor:default; }
table.heat { border-collapse:separate; border-spacing:7px; font-variant-numeric:tabular-nums; }
table.heat th { font-weight:500; color:var(--muted); font-size:12px; padding:2px 6px; }
table.heat th.row { text-align:right; white-space:nowrap; }
td.cell { width:62px; height:42px; text-align:center; font-size:12px; border-radius:5px; position:relative; border:2px solid transparent; }
td.cell.hot { border-color:var(--hot); box-shadow:inset 0 0 0 1px #fff; }
td.cell.planned::after { content:""; position:absolute; inset:-5px; border:2px dashed var(--plan); border-radius:7px; pointer-events:none; }
td.cell.own::before { content:""; position:absolute; top:3px; right:3px; width:7px; height:7px; border-radius:50%; background:var(--hot); }
td.rate { min-width:130px; padding-left:10px; }
.bar { height:8px; background:#e9edf1; border-radius:4px; overflow:hidden; }
.bar > div { height:100%; background:var(--hot); }
.rate span { font-size:12px; color:var(--muted); }
.legend { display:flex; gap:8px 18px; align-items:center; color:var(--muted); font-size:12px; margin-top:12px; flex-wrap:wrap; }
.swatch { display:inline-block; width:16px; height:12px; border-radius:3px; vertical-align:middle; margin-right:5px; }
.ramp { width:120px; height:10px; border-radius:3px; display:inline-block; vertical-align:middle; background:linear-gradient(90deg,#f2f6fb,#9ecae1,#3182bd,#08306b); }
.side .row { display:flex; justify-content:space-between; gap:8px; margin:6px 0; }
.side .row b { font-variant-numeric:tabular-nums; }
#status { min-height:20px; font-size:12px; color:var(--muted); margin-top:10px; }
#status.error { color:#c92a2a; }
#login { max-width:420px; margin:60px auto; }
.hidden { display:none !important; }
`;

// Runs in the browser; kept free of build steps (plain ES2020).
const SCRIPT = `
const TOKEN_KEY = ${JSON.stringify(TOKEN_KEY)};
const $ = (id) => document.getElementById(id);
const state = { stats: null, hot: null, view: '', plan: null };

(function takeToken() {
  const url = new URL(location.href);
  const t = url.searchParams.get('token');
  if (t) {
    sessionStorage.setItem(TOKEN_KEY, t);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
})();

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) { showLogin(); throw new Error('no admin token'); }
  const res = await fetch(path, {
    method,
    headers: Object.assign({ authorization: 'Bearer ' + token }, body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const json = await res.json().catch(() => null);
  if (res.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showLogin('The admin token was refused.'); }
  if (!res.ok) throw new Error((json && json.error && json.error.message) || (method + ' ' + path + ': HTTP ' + res.status));
  return json;
}

function showLogin(message) {
  $('app').classList.add('hidden');
  $('login').classList.remove('hidden');
  $('login-msg').textContent = message || '';
}

function status(text, error) {
  const s = $('status');
  s.textContent = text;
  s.className = error ? 'error' : '';
}

const pct = (x) => (100 * x).toFixed(1) + '%';
const mib = (b) => (b / 1048576).toFixed(2) + ' MiB';
function short(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M';
  if (n >= 1e4) return (n / 1e3).toFixed(0) + 'k';
  if (n >= 1e3) return (n / 1e3).toFixed(1) + 'k';
  return String(n);
}

// Blues ramp (light to dark) by share of the layer's routings; 1/E is the middle of the scale
const RAMP = [[242, 246, 251], [198, 219, 239], [158, 202, 225], [107, 174, 214], [49, 130, 189], [8, 48, 107]];
function color(t) {
  t = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(t));
  const f = t - i;
  const c = RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * f));
  return { bg: 'rgb(' + c.join(',') + ')', ink: t > 2.6 ? '#fff' : '#1d2733' };
}

function countsOfView() {
  const s = state.stats;
  if (!state.view) return s.overall;
  return s.domains[state.view] || { tokens: 0, prompts: 0, counts: s.overall.counts.map((r) => r.map(() => 0)) };
}

function layersOf(json, L) {
  const out = [];
  for (let l = 0; l < L; l++) out.push(new Set((json && json[String(l)]) || []));
  return out;
}

function render() {
  const s = state.stats;
  const h = state.hot;
  const L = s.numLayers, E = s.numExperts;
  const c = countsOfView();
  const resident = layersOf(h.layers, L);
  const own = state.view && h.profiles && h.profiles[state.view] ? layersOf(h.profiles[state.view].layers, L) : null;
  const planned = state.plan ? layersOf(state.plan.resident.layers, L) : null;

  $('model').textContent = h.model;
  $('version').textContent = 'hot set v' + h.version + ' (' + (h.source === 'r2' ? 'hot-set.json' : 'HOT_EXPERTS') + ')';
  $('since').textContent = 'statistics of this isolate since ' + (s.since ? new Date(s.since).toLocaleString() : 'start');

  let hits = 0, all = 0;
  const perLayer = c.counts.map((row, l) => {
    const total = row.reduce((a, b) => a + b, 0);
    const hot = row.reduce((a, v, e) => a + (resident[l].has(e) ? v : 0), 0);
    hits += hot; all += total;
    return { total, hot, rate: total ? hot / total : 0 };
  });
  $('hit-overall').textContent = all ? pct(hits / all) : '–';
  $('hit-overall').dataset.value = all ? String(hits / all) : '';
  $('tokens').textContent = short(c.tokens);
  $('requests').textContent = short(c.prompts);
  $('resident').textContent = h.experts + ' / ' + h.experts_total;
  $('resident-bytes').textContent = mib(h.bytes) + (h.budget_bytes !== null ? ' of ' + mib(h.budget_bytes) + ' (HOT_BUDGET_MB)' : ' (no HOT_BUDGET_MB)');

  const head = '<tr><th></th>' + Array.from({ length: E }, (_, e) => '<th>' + e + '</th>').join('') + '<th class="row" style="text-align:left;padding-left:10px">served hot</th></tr>';
  const rows = c.counts.map((row, l) => {
    const total = perLayer[l].total;
    const cells = row.map((v, e) => {
      const share = total ? v / total : 0;
      const col = color(share * E / 2);
      const cls = ['cell', resident[l].has(e) ? 'hot' : '', own && own[l].has(e) ? 'own' : '', planned && planned[l].has(e) ? 'planned' : ''].filter(Boolean).join(' ');
      const tip = 'layer ' + l + ', expert ' + e + ': ' + v + ' routings (' + pct(share) + ' of the layer)' + (resident[l].has(e) ? ', resident' : ', cold');
      return '<td class="' + cls + '" data-layer="' + l + '" data-expert="' + e + '" data-count="' + v + '" data-hot="' + (resident[l].has(e) ? 1 : 0) + '" style="background:' + col.bg + ';color:' + col.ink + '" title="' + tip + '">' + short(v) + '</td>';
    }).join('');
    const r = perLayer[l].rate;
    return '<tr><th class="row">layer ' + l + '</th>' + cells + '<td class="rate" data-layer-rate="' + l + '"><div class="bar"><div style="width:' + (100 * r).toFixed(1) + '%"></div></div><span>' + (total ? pct(r) : '–') + '</span></td></tr>';
  }).join('');
  $('heatmap').innerHTML = '<thead>' + head + '</thead><tbody>' + rows + '</tbody>';

  const names = new Set([...Object.keys(s.domains), ...Object.keys(h.profiles || {})]);
  const sel = $('view');
  const want = ['<option value="">all traffic</option>', ...[...names].sort().map((n) => '<option value="' + n + '">profile ' + n + '</option>')].join('');
  if (sel.innerHTML !== want) { sel.innerHTML = want; sel.value = state.view; }

  const prof = $('profiles');
  prof.innerHTML = h.profiles
    ? Object.entries(h.profiles).map(([n, p]) => '<div class="row"><span>' + n + '</span><b>' + p.experts + ' experts · ' + mib(p.bytes) + '</b></div>').join('') +
      '<div class="row"><span>picked by</span><b>' + (h.skill_map ? 'skill map (layer 0)' : 'moe.profile only') + '</b></div>'
    : '<div class="row"><span>none</span><b>one hot set</b></div>';

  if (state.plan) {
    const p = state.plan;
    $('plan-result').innerHTML =
      '<div class="row"><span>resident</span><b>' + p.resident.experts + ' experts · ' + mib(p.resident.bytes) + '</b></div>' +
      '<div class="row"><span>expected served hot</span><b>' + pct(p.expected.overall) + '</b></div>' +
      Object.entries(p.expected.domains).map(([d, v]) => '<div class="row"><span>&nbsp;&nbsp;' + d + '</span><b>' + pct(v) + '</b></div>').join('') +
      '<div class="row"><span>profiles</span><b>' + (p.hot_set.profiles ? Object.keys(p.hot_set.profiles).join(', ') : 'none') + '</b></div>';
  } else {
    $('plan-result').innerHTML = '';
  }
  $('apply').disabled = !state.plan;
}

async function load() {
  const [stats, hot] = await Promise.all([api('GET', '/admin/stats'), api('GET', '/admin/hot-set')]);
  state.stats = stats;
  state.hot = hot;
  if (!$('budget').value) $('budget').value = ((hot.budget_bytes !== null ? hot.budget_bytes : hot.bytes) / 1048576).toFixed(3);
  render();
}

async function plan() {
  status('planning…');
  const q = new URLSearchParams({ budget_mb: $('budget').value, profiles: $('with-profiles').checked ? '1' : '0' });
  state.plan = await api('POST', '/admin/hot-set/plan?' + q);
  render();
  status('planned from ' + short(state.plan.stats.tokens) + ' tokens of this isolate: dashed cells would be resident');
}

async function apply() {
  if (!state.plan) return;
  status('applying…');
  const res = await api('PUT', '/admin/hot-set', state.plan.hot_set);
  state.plan = null;
  await load();
  status('applied: hot set v' + res.version + ', ' + res.experts + ' experts resident');
}

function guard(fn) {
  return () => fn().catch((e) => status(e.message, true));
}

document.addEventListener('DOMContentLoaded', () => {
  $('view').addEventListener('change', (e) => { state.view = e.target.value; render(); });
  $('plan').addEventListener('click', guard(plan));
  $('apply').addEventListener('click', guard(apply));
  $('refresh').addEventListener('click', guard(load));
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('login-token').value.trim());
    $('login').classList.add('hidden');
    $('app').classList.remove('hidden');
    guard(load)();
  });
  if (!sessionStorage.getItem(TOKEN_KEY)) showLogin();
  else guard(load)();
});
`;

const BODY = `
<div id="app">
<header><h1>moe-edge · hot set</h1><span class="sub" id="model"></span><span class="sub" id="version"></span><span class="sub" id="since"></span></header>
<main>
  <div class="kpis">
    <div class="card kpi"><div class="v" id="hit-overall">–</div><div class="l">routings served hot by the current hot set</div></div>
    <div class="card kpi"><div class="v" id="tokens">–</div><div class="l">tokens routed</div></div>
    <div class="card kpi"><div class="v" id="requests">–</div><div class="l">generations</div></div>
    <div class="card kpi"><div class="v" id="resident">–</div><div class="l" id="resident-bytes">experts resident</div></div>
  </div>
  <section class="card">
    <div class="toolbar">
      <h2 style="margin:0">Expert usage</h2>
      <label>traffic <select id="view"></select></label>
      <button class="secondary" id="refresh">Refresh</button>
    </div>
    <table class="heat" id="heatmap"></table>
    <div class="legend">
      <span><span class="ramp"></span>&nbsp; share of the layer's routings (darker: more)</span>
      <span><span class="swatch" style="border:2px solid var(--hot)"></span>resident (hot)</span>
      <span><span class="swatch" style="border:2px dashed var(--plan)"></span>resident after the planned change</span>
      <span><span class="swatch" style="background:var(--hot);width:8px;height:8px;border-radius:50%"></span>the selected profile's own experts</span>
    </div>
    <div id="status"></div>
  </section>
  <aside class="side">
    <div class="card" style="margin-bottom:18px">
      <h2>Plan a hot set</h2>
      <div class="row"><label for="budget">budget for hot experts (MiB)</label><input id="budget" type="number" min="0" step="0.1" style="width:90px"></div>
      <div class="row"><label for="with-profiles">one profile per traffic profile</label><input id="with-profiles" type="checkbox" checked></div>
      <div class="row" style="margin-top:10px"><button class="secondary" id="plan">Plan</button><button id="apply" disabled>Apply plan</button></div>
      <div id="plan-result"></div>
    </div>
    <div class="card"><h2>Profiles</h2><div id="profiles"></div></div>
  </aside>
</main>
</div>
<div id="login" class="card hidden">
  <h2>moe-edge admin</h2>
  <p id="login-msg" style="color:#c92a2a"></p>
  <form id="login-form"><label for="login-token">ADMIN_TOKEN</label><br><input id="login-token" type="password" autocomplete="off" style="width:100%;margin:6px 0 10px"><button type="submit">Open</button></form>
</div>
`;

/** The page; `nonce` goes into the CSP header and the inline script tag. */
export function dashboardHtml(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>moe-edge · hot set</title>
<style>${STYLE}</style></head>
<body>${BODY}<script nonce="${nonce}">${SCRIPT}</script></body></html>
`;
}

/** Content-Security-Policy of the page: its own script (by nonce), inline styles, same-origin API calls, nothing else. */
export function dashboardCsp(nonce: string): string {
  return `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
}

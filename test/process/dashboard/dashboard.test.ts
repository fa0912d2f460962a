// The admin dashboard in a real browser: the server as `npm start` runs it (tools/start.ts: local R2, the GPU
// backend, wrangler dev), real traffic under two profiles, then GET /admin in headless Chromium (Debian's
// chromium driven by playwright-core): the heatmap has one cell per layer x expert with the counts of
// /admin/stats, the profile selector switches to a profile's counts, and "Plan" + "Apply plan" change the
// hot set that GET /admin/hot-set reports. DASHBOARD_SCREENSHOT=<png> keeps a screenshot of the page.
import { existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_TIMEOUT_MS, startServer, type StartedServer } from '../../helpers/npm-start';

const CHROMIUM = '/usr/bin/chromium';
const ADMIN_TOKEN = 'dashboard-test-admin-token';
const MODEL = 'default';

let server: StartedServer | undefined;
let base = '';
let browser: Browser | undefined;
let page: Page;

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function complete(prompt: string, profile?: string): Promise<any> {
  const res = await fetch(`${base}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: 12, temperature: 0, ...(profile ? { moe: { profile } } : {}) }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as any).usage;
}

/** data-count of every heatmap cell, as [layer][expert]. */
async function cellCounts(): Promise<number[][]> {
  return page.$$eval('#heatmap td.cell', (cells) => {
    const out: number[][] = [];
    for (const c of cells as HTMLElement[]) (out[Number(c.dataset.layer)] ??= [])[Number(c.dataset.expert)] = Number(c.dataset.count);
    return out;
  });
}

const haveChromium = existsSync(CHROMIUM);

describe.skipIf(!haveChromium)(`the admin dashboard in headless Chromium (needs ${CHROMIUM}: apt-get install chromium)`, () => {
  beforeAll(async () => {
    server = await startServer(['--admin-token', ADMIN_TOKEN]);
    base = server.base;

    // two profiles over the deployment's hot set (HOT_EXPERTS=50%): each takes half of every layer's resident experts
    const hot = await admin('GET', '/admin/hot-set');
    const half = (first: boolean) => Object.fromEntries(Object.entries(hot.layers as Record<string, number[]>).map(([l, ids]) => [l, first ? ids.slice(0, ids.length >> 1) : ids.slice(ids.length >> 1)]));
    await admin('PUT', '/admin/hot-set', { format: 'moe-edge/hot-set/1', layers: hot.layers, profiles: { prose: { layers: half(true) }, code: { layers: half(false) } } });
    for (const p of ['The moon is bright tonight', 'Upon the hill the shepherd sings', 'A quiet river in the spring']) await complete(p, 'prose');
    for (const p of ['def add(a, b):\n    return a + b', 'for i in range(10):', 'import os\nimport sys']) await complete(p, 'code');
    for (const p of ['12 + 30 =', '7 * 8 =']) await complete(p);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1240, height: 700 }, deviceScaleFactor: 1 });
  }, READY_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('draws one heatmap cell per layer x expert with the counts of /admin/stats and the hot set outlined', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(`${base}/admin?token=${encodeURIComponent(ADMIN_TOKEN)}`);
    await page.waitForSelector('#heatmap td.cell');
    expect(new URL(page.url()).search).toBe(''); // the token left the address bar for sessionStorage

    const stats = await admin('GET', '/admin/stats');
    const hot = await admin('GET', '/admin/hot-set');
    expect(await page.locator('#heatmap td.cell').count()).toBe(stats.numLayers * stats.numExperts);
    expect(await cellCounts()).toEqual(stats.overall.counts);
    const outlined = await page.$$eval('#heatmap td.cell.hot', (cells) => cells.map((c) => `${(c as HTMLElement).dataset.layer}/${(c as HTMLElement).dataset.expert}`));
    expect(outlined.sort()).toEqual(Object.entries(hot.layers as Record<string, number[]>).flatMap(([l, ids]) => ids.map((e) => `${l}/${e}`)).sort());

    // the overall hit rate: share of the routings whose expert is resident
    const counts: number[][] = stats.overall.counts;
    const hits = counts.reduce((s, row, l) => s + (hot.layers[l] as number[]).reduce((a, e) => a + row[e]!, 0), 0);
    const all = counts.flat().reduce((a, b) => a + b, 0);
    expect(Number(await page.getAttribute('#hit-overall', 'data-value'))).toBeCloseTo(hits / all, 12);
    expect(errors).toEqual([]);
  });

  it('the profile selector shows one profile\'s counts', async () => {
    const stats = await admin('GET', '/admin/stats');
    expect(Object.keys(stats.domains).sort()).toEqual(['code', 'prose']);
    await page.selectOption('#view', 'code');
    expect(await cellCounts()).toEqual(stats.domains.code.counts);
    expect(await page.locator('#heatmap td.cell.own').count()).toBeGreaterThan(0); // the profile's own experts are marked
    await page.selectOption('#view', '');
    expect(await cellCounts()).toEqual(stats.overall.counts);
  });

  it('Plan previews a hot set planned from the isolate\'s statistics, Apply plan installs it', async () => {
    const before = await admin('GET', '/admin/hot-set');
    await page.click('#plan');
    await page.waitForSelector('#heatmap td.cell.planned');
    await expect.poll(() => page.isEnabled('#apply')).toBe(true);
    const shot = process.env.DASHBOARD_SCREENSHOT ? resolve(process.env.DASHBOARD_SCREENSHOT) : join(tmpdir(), `moe-edge-dashboard-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    expect((await stat(shot)).size).toBeGreaterThan(10_000);
    if (!process.env.DASHBOARD_SCREENSHOT) await rm(shot, { force: true });
    const planned = await page.$$eval('#heatmap td.cell.planned', (cells) => cells.map((c) => `${(c as HTMLElement).dataset.layer}/${(c as HTMLElement).dataset.expert}`));

    await page.click('#apply');
    await expect.poll(() => page.textContent('#status')).toMatch(/^applied: hot set v\d+/);
    const after = await admin('GET', '/admin/hot-set');
    expect(after.version).toBeGreaterThan(before.version);
    expect(after.source).toBe('r2');
    expect(Object.entries(after.layers as Record<string, number[]>).flatMap(([l, ids]) => ids.map((e) => `${l}/${e}`)).sort()).toEqual(planned.sort());
    expect(after.bytes).toBeLessThanOrEqual(before.bytes); // planned within the budget it had (no HOT_BUDGET_MB: what was resident)
    expect(Object.keys(after.profiles).sort()).toEqual(['code', 'prose']); // one profile per profile of the traffic
    expect(after.skill_map).toMatchObject({ profiles: ['code', 'prose'] });
    // the page shows the new hot set
    const outlined = await page.$$eval('#heatmap td.cell.hot', (cells) => cells.map((c) => `${(c as HTMLElement).dataset.layer}/${(c as HTMLElement).dataset.expert}`));
    expect(outlined.sort()).toEqual(planned.sort());
    // and requests without moe.profile now get one from the skill map
    expect(['code', 'prose']).toContain((await complete('def mul(a, b):')).moe.profile);
  });
});

// Baseline for the load test's workerd memory: the RSS of the workerd that wrangler runs grows with every
// request, whatever the Worker. This floods (autocannon, 16 connections) a one-line Worker and moe-edge under
// the same local-worker setup (tools/dev/local-worker.ts), plain and streamed (40 SSE events: a one-liner's stream, moe-edge's
// chat stream of max_tokens 40, every expert hot), and prints workerd's RSS every 10 s: when the one-liner
// grows as much per request, the growth is wrangler's / workerd's, not moe-edge's.
//   npx tsx bench/load/workerd-baseline.ts [--seconds 60]    (writes bench/results/load-workerd-baseline.md)
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { startLocalWorker } from '../../tools/dev/local-worker';
import { seedLocalR2 } from '../../tools/seed-local-r2';

const { values: o } = parseArgs({ options: { seconds: { type: 'string', default: '60' } } });
const SECONDS = Number(o.seconds);

const rssMiB = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
function workerdPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/stat`, 'utf8').includes('(workerd)');
      } catch {
        return false;
      }
    })
    .map(Number);
}

type Target = Pick<autocannon.Options, 'method' | 'headers' | 'body'> & { path: string };

async function flood(name: string, config: string, req: Target, persistTo: string | false): Promise<void> {
  const before = new Set(workerdPids());
  const worker = await startLocalWorker({ config, vars: { HOT_EXPERTS: 'all' }, persistTo });
  try {
    const url = worker.url;
    const pids = workerdPids().filter((p) => !before.has(p));
    const mem = () => pids.map(rssMiB).reduce((a, b) => a + b, 0);
    const start = mem();
    const line: string[] = [];
    const t0 = performance.now();
    const sampler = setInterval(() => line.push(`${Math.round((performance.now() - t0) / 1000)}s ${mem().toFixed(0)}`), 10_000);
    // one run for the whole time: no connections cut between rounds (a cut stream's generation lives on briefly)
    const { path, ...rest } = req;
    const res = await autocannon({ url: `${url}${path}`, connections: 16, duration: SECONDS, ...rest });
    clearInterval(sampler);
    if (res.non2xx || res.errors) throw new Error(`${name}: ${res.non2xx} non-2xx, ${res.errors} errors`);
    const growth = mem() - start;
    const total = res.requests.total;
    const summary = `${name}: workerd RSS ${start.toFixed(0)} MiB at start; ${line.join(', ')} MiB; ${total} requests, ${((growth * 1024) / total).toFixed(1)} KiB per request`;
    lines.push(summary);
    console.log(summary);
  } finally {
    await worker.dispose();
  }
}

// plain: one response; /stream: 40 SSE events, pulled one at a time with a 1 ms pause, like a token stream
const ONE_LINER = `const enc = new TextEncoder();
export default {
  fetch(req) {
    if (!req.url.endsWith('/stream')) return new Response('ok');
    let i = 0;
    const body = new ReadableStream({
      async pull(c) {
        if (i++ >= 40) return c.close();
        await new Promise((r) => setTimeout(r, 1));
        c.enqueue(enc.encode('data: {"i":' + i + '}\\n\\n'));
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
  },
};
`;

const lines: string[] = [];
const dir = await mkdtemp(join(tmpdir(), 'moe-baseline-'));
try {
  await writeFile(join(dir, 'worker.js'), ONE_LINER);
  await writeFile(join(dir, 'wrangler.toml'), 'name = "one-liner"\nmain = "worker.js"\ncompatibility_date = "2026-08-01"\n');
  const oneLiner = join(dir, 'wrangler.toml');
  await seedLocalR2({ persistTo: join(dir, 'state'), log: () => {} });
  await flood('one-line Worker, GET / (plain)', oneLiner, { path: '/' }, false);
  await flood('moe-edge, GET /v1/models (plain)', 'wrangler.toml', { path: '/v1/models' }, join(dir, 'state'));
  await flood('one-line Worker, GET /stream (40 SSE events)', oneLiner, { path: '/stream' }, false);
  await flood('moe-edge, streamed chat (max_tokens 40)', 'wrangler.toml', {
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'Tell me a story.' }], max_tokens: 40, temperature: 0, stream: true }),
  }, join(dir, 'state'));
  await writeFile(
    'bench/results/load-workerd-baseline.md',
    `# workerd's RSS under wrangler, whatever the Worker\n\n\`npx tsx bench/load/workerd-baseline.ts --seconds ${SECONDS}\`, ${new Date().toISOString()}: ` +
      `autocannon, 16 connections, ${SECONDS} s each, unstable_startWorker with the inspector off.\n\n${lines.map((l) => `- ${l}`).join('\n')}\n`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}

// bench:split's speculative extension: self-speculative decoding against plain decoding, in one run, on the default
// model with its per-domain profiles at 25/50/75% of the expert bytes resident (planned from the calibration set as
// bench:hotset plans them), on held-out prompts of each domain, with injected round trips of 5 and 20 ms (the fault
// proxy's delay mode, in its own process). Per (share, domain, round trip): acceptance rate, tokens per verification
// pass, backend round trips per generated token, and per-token decode latency, speculative and plain.
//   npm run bench:speculative [-- --tokens 32 --prompts 2 --max-tokens 4 --draft substitute,drop --rtt 5,20 --no-record]
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { GenerateRequest, MoeOptions } from '../../src/engine/api';
import { parseHotExperts } from '../../src/hotset/spec';
import { loadNodeKernels } from '../../src/kernels/load-node';
import { edgeSizes } from '../../src/planning/sizes';
import type { RoutingStats } from '../../src/routing/stats';
import { ServedModel } from '../../src/runtime/served-model';
import { fsSource } from '../../src/store/source-fs';
import { buildCalibration, DEFAULT_OUT, DEFAULTS, defaultCorpus, DOMAINS } from '../../models/calibration/build';
import { loadProfiled, parsePrompts, profilePrompts, promptTokens } from '../../tools/profile';
import { startBackend } from '../../tools/dev/backend';
import { spawnFaultProxy } from '../../tools/dev/fault-proxy-process';
import { plansAt } from '../hotset/measure';
import { machineInfo } from '../matvec/machine';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/default' },
    tokens: { type: 'string', default: '32' },
    prompts: { type: 'string', default: '2' },
    'max-tokens': { type: 'string', default: '4' },
    draft: { type: 'string', default: 'substitute,drop' },
    rtt: { type: 'string', default: '5,20' },
    'no-record': { type: 'boolean', default: false },
  },
});
const SHARES = [0.25, 0.5, 0.75];
const TOKENS = Number(o.tokens);
const log = (l: string) => process.stderr.write(`bench:speculative: ${l}\n`);
const TOKEN = 'bench-speculative-token';

interface Row {
  share: number;
  domain: string;
  draft: 'substitute' | 'drop';
  rttMs: number;
  acceptance: number;
  tokensPerPass: number;
  /** backend requests per generated token after the first (the prompt's prefill left out) */
  roundTripsPerToken: { speculative: number; plain: number };
  msPerToken: { speculative: number; plain: number };
  tokens: number;
}

// 1. per-domain profiles at each share, planned from the calibration set's routing
const sets = await buildCalibration({ ...DEFAULTS, out: DEFAULT_OUT, corpus: defaultCorpus() });
const p = await loadProfiled(o.model);
const stats: RoutingStats = await profilePrompts(p, parsePrompts(await readFile(sets.calibration, 'utf8'), sets.calibration));
const sizes = edgeSizes(p.model.manifest);
const plans = SHARES.map((s) => plansAt(stats, sizes, s));
const heldout = parsePrompts(await readFile(sets.heldout, 'utf8'), sets.heldout);

// 2. the backend and the delaying proxy, each in its own process
const backend = await startBackend({ token: TOKEN, model: o.model, args: ['--threads', '1'] });
const proxy = await spawnFaultProxy(backend.url);
const proxyUrl = proxy.url;

/** One greedy generation: ms per token after the first, and its usage. */
async function generate(model: ServedModel, tokens: number[], moe: MoeOptions) {
  const req: GenerateRequest = { promptTokens: tokens, maxTokens: TOKENS, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: [], moe };
  const gen = model.generate(req);
  let r = await gen.next();
  // from the first token on: the prompt's prefill (and its round trips) is the same either way and left out
  const first = performance.now();
  const prefillCalls = gen.moe!.remote_calls;
  while (!r.done) r = await gen.next();
  const result = r.value;
  if (result.moe?.degraded) throw new Error(`degraded: ${result.moe.degraded}`);
  const decodeCalls = result.moe!.remote_calls - prefillCalls;
  return { msPerToken: (performance.now() - first) / Math.max(1, result.completionTokens - 1), usage: { ...result.moe!, remote_calls: decodeCalls }, completion: result.completionTokens - 1 };
}

const rows: Row[] = [];
const kernels = await loadNodeKernels();
try {
  for (const plan of plans) {
    for (const domain of DOMAINS) {
      const profile = plan.profiles[domain];
      if (!profile) continue;
      const model = await ServedModel.load(fsSource(o.model), kernels, { hotExperts: parseHotExperts(JSON.stringify({ layers: Object.fromEntries(profile.layers.map((e, l) => [String(l), e])) })), budgetBytes: null });
      const prompts = heldout.filter((q) => q.domain === domain).slice(0, Number(o.prompts)).map((q) => promptTokens(p, q.text));
      for (const rtt of o.rtt.split(',').map(Number)) {
        for (const draft of o.draft.split(',') as ('substitute' | 'drop')[]) {
          const moe = (max: number): MoeOptions => ({
            policy: 'remote', degradedPolicy: 'error', backend: { url: `${proxyUrl}/delay/${rtt}`, token: TOKEN, timeoutMs: 30_000 },
            speculativeMaxTokens: max, speculativeDraftPolicy: draft,
          });
          const acc = { drafted: 0, accepted: 0, passes: 0, specCalls: 0, plainCalls: 0, specMs: [] as number[], plainMs: [] as number[], specTok: 0, plainTok: 0 };
          for (const tokens of prompts) {
            // interleaved, same prompt: plain then speculative
            const plain = await generate(model, tokens, moe(0));
            const spec = await generate(model, tokens, moe(Number(o['max-tokens'])));
            acc.plainMs.push(plain.msPerToken);
            acc.specMs.push(spec.msPerToken);
            acc.plainCalls += plain.usage.remote_calls;
            acc.specCalls += spec.usage.remote_calls;
            acc.plainTok += plain.completion;
            acc.specTok += spec.completion;
            acc.drafted += spec.usage.speculative_drafted;
            acc.accepted += spec.usage.speculative_accepted;
            acc.passes += spec.usage.verification_passes;
          }
          const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
          const row: Row = {
            share: plan.share, domain, draft, rttMs: rtt,
            acceptance: acc.drafted ? acc.accepted / acc.drafted : 0,
            tokensPerPass: acc.passes ? (acc.accepted + acc.passes) / acc.passes : 1,
            roundTripsPerToken: { speculative: acc.specCalls / acc.specTok, plain: acc.plainCalls / acc.plainTok },
            msPerToken: { speculative: mean(acc.specMs), plain: mean(acc.plainMs) },
            tokens: acc.specTok,
          };
          rows.push(row);
          log(`${plan.share * 100}% ${domain} ${draft} ${rtt} ms: acceptance ${(row.acceptance * 100).toFixed(0)}%, ${row.tokensPerPass.toFixed(2)} tokens/pass, round trips/token ${row.roundTripsPerToken.speculative.toFixed(2)} vs ${row.roundTripsPerToken.plain.toFixed(2)}, ms/token ${row.msPerToken.speculative.toFixed(1)} vs ${row.msPerToken.plain.toFixed(1)}`);
        }
      }
    }
  }
} finally {
  proxy.stop();
  await backend.stop();
}

const machine = machineInfo();
const md: string[] = [
  '# Self-speculative decoding across the split (bench:split\'s speculative extension)',
  '',
  `Measured ${new Date().toISOString().slice(0, 16)} on ${machine.cpu} (${machine.cores} cores, load ${machine.loadavg.map((x) => x.toFixed(2)).join(' ')}), Node ${machine.node}; ${o.model}, greedy, ${TOKENS} tokens after each of ${o.prompts} held-out prompt(s) per domain; the domain's own profile resident (planned from the calibration set at that share of the expert bytes); backend on loopback (cpu device, 1 thread) behind the fault proxy's delay; SPECULATIVE_MAX_TOKENS ${o['max-tokens']}. Plain and speculative runs alternate on the same prompts.`,
  '',
  'Reproduce: `npm run bench:speculative`.',
  '',
  '| resident | domain | draft | RTT ms | acceptance | tokens / pass | round trips / token (spec / plain) | fewer round trips | ms / token (spec / plain) | speed-up |',
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.share * 100}% | ${r.domain} | ${r.draft} | ${r.rttMs} | ${(r.acceptance * 100).toFixed(0)}% | ${r.tokensPerPass.toFixed(2)} | ${r.roundTripsPerToken.speculative.toFixed(2)} / ${r.roundTripsPerToken.plain.toFixed(2)} | ${(r.roundTripsPerToken.plain / r.roundTripsPerToken.speculative).toFixed(2)}x | ${r.msPerToken.speculative.toFixed(1)} / ${r.msPerToken.plain.toFixed(1)} | ${(r.msPerToken.plain / r.msPerToken.speculative).toFixed(2)}x |`),
  '',
];
process.stdout.write(md.join('\n'));
if (!o['no-record']) {
  await writeFile('bench/results/speculative.json', JSON.stringify({ date: new Date().toISOString(), machine, options: o, rows }, null, 2) + '\n');
  await writeFile('bench/results/speculative.md', md.join('\n'));
  log('recorded bench/results/speculative.{json,md}');
}

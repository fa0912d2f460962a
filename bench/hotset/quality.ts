// Quality of the cold policies at a budget: held-out perplexity per domain with only the planned experts
// resident, cold picks handled as the Worker handles them (ServedModel.beginExperts -> SplitExperts, whose
// substitute / drop come from src/remote/policies.ts), next to `remote` (cold experts on the real GPU
// backend over loopback: exact, so it must equal the all-local perplexity).
import type { ColdPolicy, MoeOptions } from '../../src/engine/api';
import { fsSource } from '../../src/store/source-fs';
import type { HotSetSpec } from '../../src/hotset/spec';
import { ServedModel } from '../../src/runtime/served-model';
import { perplexity } from '../../tools/perplexity';
import { makeKernels } from '../../tools/kernels-node';
import { startBackend } from '../../tools/dev/backend';

export interface QualityRow {
  share: number;
  /** which hot set: the global one, or each domain scored under its own domain's profile */
  set: 'global' | 'profile';
  /** experts resident (global set; for `profile`, the mean over the domains' profiles) */
  hot: number;
  /** domain -> policy -> perplexity */
  perplexity: Record<string, Record<ColdPolicy, number>>;
}

export interface QualityResults {
  pplTokens: number;
  /** every expert resident (HOT_EXPERTS=all): the reference `remote` must reproduce */
  allLocal: Record<string, number>;
  rows: QualityRow[];
  /** largest |remote - all-local| / all-local over every row and domain */
  remoteMaxRelDiff: number;
}

export interface QualityInput {
  modelDir: string;
  /** domain -> held-out tokens (no BOS) */
  texts: Record<string, number[]>;
  /** per budget: the global hot set and each domain's profile (layers[l] = expert ids) */
  plans: { share: number; global: number[][]; profiles: Record<string, number[][]> }[];
  log?: (line: string) => void;
}

const POLICIES: ColdPolicy[] = ['remote', 'substitute', 'drop'];
const TOKEN = 'bench-hotset-quality';

function explicit(layers: readonly (readonly number[])[]): HotSetSpec {
  return { kind: 'explicit', layers: new Map(layers.map((row, l) => [l, [...row]])) };
}

export async function measureQuality(input: QualityInput): Promise<QualityResults> {
  const log = input.log ?? (() => {});
  const domains = Object.keys(input.texts);
  const model = await ServedModel.load(fsSource(input.modelDir), await makeKernels(), { hotExperts: { kind: 'all' }, budgetBytes: null });
  const backend = await startBackend({ token: TOKEN, model: input.modelDir, timeoutMs: 120_000 });
  try {
    const moe = (policy: ColdPolicy): MoeOptions => ({
      policy,
      degradedPolicy: 'error', // a backend failure must fail the benchmark, not quietly substitute
      backend: policy === 'remote' ? { url: backend.url, token: TOKEN, timeoutMs: 60_000 } : null,
    });
    const ppl = async (policy: ColdPolicy, tokens: number[]): Promise<number> => {
      const g = model.beginExperts(moe(policy));
      try {
        const scored = { manifest: model.manifest, contextLength: model.contextLength, kernels: model.kernels, weights: g.weights, expertExecutor: g.experts };
        const r = await perplexity(scored, tokens);
        if (g.usage.degraded) throw new Error(`policy ${policy} degraded: ${g.usage.degraded}`);
        return r.perplexity;
      } finally {
        g.end();
      }
    };
    const install = async (layers: readonly (readonly number[])[], id: number) => model.hot.install(model.resolveHotSet(explicit(layers)), id, 'env');

    const allLocal: Record<string, number> = {};
    for (const d of domains) allLocal[d] = await ppl('substitute', input.texts[d]); // nothing is cold: the policy never acts
    log(`quality: all-local ${domains.map((d) => `${d} ${allLocal[d].toFixed(3)}`).join(', ')}`);

    const rows: QualityRow[] = [];
    let id = 1;
    for (const plan of input.plans) {
      const global: QualityRow = { share: plan.share, set: 'global', hot: plan.global.flat().length, perplexity: {} };
      await install(plan.global, id++);
      for (const d of domains) {
        global.perplexity[d] = {} as Record<ColdPolicy, number>;
        for (const p of POLICIES) global.perplexity[d][p] = await ppl(p, input.texts[d]);
      }
      rows.push(global);
      const own: QualityRow = { share: plan.share, set: 'profile', hot: 0, perplexity: {} };
      for (const d of domains) {
        const layers = plan.profiles[d] ?? plan.global;
        own.hot += layers.flat().length / domains.length;
        await install(layers, id++);
        own.perplexity[d] = {} as Record<ColdPolicy, number>;
        for (const p of POLICIES) own.perplexity[d][p] = await ppl(p, input.texts[d]);
      }
      rows.push(own);
      log(`quality at ${plan.share * 100}%: ${domains.map((d) => `${d} drop ${global.perplexity[d].drop.toFixed(2)} / substitute ${global.perplexity[d].substitute.toFixed(2)} / remote ${global.perplexity[d].remote.toFixed(3)}`).join('; ')}`);
    }
    let remoteMaxRelDiff = 0;
    for (const r of rows) for (const d of domains) remoteMaxRelDiff = Math.max(remoteMaxRelDiff, Math.abs(r.perplexity[d].remote - allLocal[d]) / allLocal[d]);
    return { pplTokens: Math.max(...domains.map((d) => input.texts[d].length)), allLocal, rows, remoteMaxRelDiff };
  } finally {
    await backend.stop();
  }
}

// Node-level: the engine with the split executor against the real GPU backend process on loopback.
// With policy remote the logits do not depend on the hot set (<= 1e-4 from the all-local CLI engine);
// substitute and drop do change them (so the check has teeth); concurrent generations share one backend
// and keep their solo outputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MoeOptions } from '../../../src/engine/api';
import { loadTextModel } from '../../../src/engine/load';
import { fsSource } from '../../../src/store/source-fs';
import { parseHotExperts } from '../../../src/hotset/spec';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { ServedModel } from '../../../src/runtime/served-model';
import { scoreTokens } from '../../../tools/score';
import { startBackend, type BackendProcess } from '../../../tools/dev/backend';
import { maxAbsDiff } from '../../helpers/logits';
import { randomHalf, splitLogits } from '../../helpers/split-score';

const MODEL = 'models/default';
let backend: BackendProcess;
let remote: MoeOptions;

beforeAll(async () => {
  backend = await startBackend({ token: 'split-exact-token' });
  remote = { policy: 'remote', degradedPolicy: 'error', backend: { url: backend.url, token: backend.token, timeoutMs: 10_000 } };
}, 60_000);
afterAll(async () => backend?.stop());

const served = async (hot: string) => ServedModel.load(fsSource(MODEL), await loadNodeKernels(), { hotExperts: parseHotExperts(hot), budgetBytes: null });

describe('policy remote is exact', () => {
  it('prefill and decode logits match the all-local engine for hot sets all, none, 50% and a random half', async () => {
    const cli = await loadTextModel(fsSource(MODEL), await loadNodeKernels());
    const all = await served('all');
    const tokens = all.encode('The experts of the edge, and the long tail of the GPU.');
    const want = await splitLogits(all, tokens, remote, 16);
    // the all-hot served model is the CLI's engine: same prefill logits
    expect(maxAbsDiff(want.rows.slice(0, tokens.length), await scoreTokens(cli, tokens))).toBe(0);
    const a = all.manifest.architecture;
    for (const hot of ['none', '50%', randomHalf(a.numLayers, a.numExperts, 7)]) {
      const got = await splitLogits(await served(hot), tokens, remote, 16);
      expect(got.usage.degraded, hot).toBeNull();
      expect(got.usage.cold_calls, hot).toBeGreaterThan(0);
      expect(maxAbsDiff(got.rows, want.rows), hot).toBeLessThanOrEqual(1e-4);
    }
  });

  it('substitute and drop are not exact: their logits move', async () => {
    const all = await served('all');
    const half = await served('50%');
    const tokens = all.encode('The experts of the edge');
    const want = await splitLogits(all, tokens, remote, 4);
    for (const policy of ['substitute', 'drop'] as const) {
      const got = await splitLogits(half, tokens, { ...remote, policy }, 4);
      expect(got.usage).toMatchObject({ policy, remote_ms: 0, degraded: null });
      expect(maxAbsDiff(got.rows, want.rows), policy).toBeGreaterThan(1e-4);
    }
  });

  it('concurrent generations over one backend each keep their solo output', async () => {
    const model = await served('none');
    const run = async (prompt: string) => {
      const g = model.generate({ promptTokens: model.encode(prompt), maxTokens: 12, sampling: { temperature: 0, topP: 1, topK: 0 }, stop: [], moe: remote });
      let text = '';
      for (let r = await g.next(); ; r = await g.next()) {
        if (r.done) return { text, moe: r.value.moe! };
        text += r.value.text;
      }
    };
    const prompts = ['Once upon a time', 'Hello there', 'Tell me about experts', 'A B C'];
    const solo: Awaited<ReturnType<typeof run>>[] = [];
    for (const p of prompts) solo.push(await run(p));
    const together = await Promise.all(prompts.map(run));
    together.forEach((r, i) => {
      expect(r.text).toBe(solo[i]!.text);
      expect(r.moe.cold_calls).toBe(solo[i]!.moe.cold_calls);
      expect(r.moe.degraded).toBeNull();
    });
  });
});

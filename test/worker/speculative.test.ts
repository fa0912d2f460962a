// Self-speculative decoding in workerd with the real backend: the resident experts draft, the exact split verifies.
// Greedy output is token for token that of plain decoding (the CLI's) for hot sets none, 25% and 50% (all: nothing is
// cold, so speculation stays off), whole and streamed, with stop sequences; `moe.speculative: false` turns it off;
// a backend that dies during a verification pass degrades as today and no unaccepted token is ever emitted.
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import { loadModelFromR2 } from '../../src/runtime/load-model';
import { randomHalf } from '../helpers/split-score';
import { callGreedy as call, callWithEnv, readSse, textOf } from './helpers';

const backend = inject('backend');
const SPEC = { SPECULATIVE_MAX_TOKENS: '4', COLD_POLICY: 'remote' };

const streamedText = (kind: string, events: any[]) => events.map((e) => (kind === 'chat' ? (e.choices?.[0]?.delta?.content ?? '') : (e.choices?.[0]?.text ?? ''))).join('');

async function quarter(): Promise<string> {
  const a = (await loadModelFromR2({ ...env, HOT_EXPERTS: 'all' })).manifest.architecture;
  const layers: Record<string, number[]> = {};
  for (let l = 0; l < a.numLayers; l++) layers[String(l)] = Array.from({ length: a.numExperts }, (_, e) => e).filter((e) => (e + l) % 4 === 0);
  return JSON.stringify({ layers });
}

describe('greedy speculation is exact', () => {
  it('hot sets none, 25% and 50%: the CLI\'s text, whole and streamed; fewer passes than tokens', async () => {
    const a = (await loadModelFromR2({ ...env, HOT_EXPERTS: 'all' })).manifest.architecture;
    for (const [name, hot] of [['none', 'none'], ['25%', await quarter()], ['50%', randomHalf(a.numLayers, a.numExperts, 7)]]) {
      for (const g of inject('greedy')) {
        for (const draft of ['substitute', 'drop']) {
          const vars = { ...SPEC, HOT_EXPERTS: hot, SPECULATIVE_DRAFT_POLICY: draft };
          const body = (await (await call(vars, g)).json()) as any;
          expect(textOf(g.kind, body), `${name} ${draft} ${g.kind}`).toBe(g.text);
          const m = body.usage.moe;
          expect(m.degraded).toBeNull();
          expect(m.verification_passes, `${name} ${draft}`).toBeGreaterThan(0);
          expect(m.speculative_accepted).toBeLessThanOrEqual(m.speculative_drafted);
          expect(m.verification_passes).toBeLessThan(body.usage.completion_tokens); // at least one pass emitted two tokens
          const events = await readSse(await call(vars, g, { stream: true, stream_options: { include_usage: true } }));
          expect(streamedText(g.kind, events), `${name} ${draft} ${g.kind} streamed`).toBe(g.text);
        }
      }
    }
  });

  it('stop sequences and max_tokens cut the output where plain decoding does', async () => {
    const g = inject('greedy').find((x) => x.kind === 'completion')!;
    const stop = g.text.trim().split(/\s+/)[2]!; // a word in the middle of the greedy text
    for (const vars of [{ ...SPEC, HOT_EXPERTS: 'none' }, { ...SPEC, HOT_EXPERTS: 'none', SPECULATIVE_MAX_TOKENS: '0' }]) {
      const body = (await (await call(vars, g, { stop: [stop] })).json()) as any;
      expect(body.choices[0].text).toBe(g.text.slice(0, g.text.indexOf(stop)));
      expect(body.choices[0].finish_reason).toBe('stop');
      const short = (await (await call(vars, { ...g, maxTokens: 5 })).json()) as any;
      expect(short.usage.completion_tokens).toBe(5);
    }
  });

  it('off: moe.speculative false, SPECULATIVE_MAX_TOKENS 0, and a hot set holding every expert', async () => {
    const g = inject('greedy')[0];
    for (const [vars, extra] of [[{ ...SPEC, HOT_EXPERTS: 'none' }, { moe: { speculative: false } }], [{ ...SPEC, HOT_EXPERTS: 'none', SPECULATIVE_MAX_TOKENS: '0' }, {}], [{ ...SPEC, HOT_EXPERTS: 'all' }, {}]] as const) {
      const body = (await (await call(vars, g, extra)).json()) as any;
      expect(textOf(g.kind, body)).toBe(g.text);
      expect(body.usage.moe).toMatchObject({ verification_passes: 0, speculative_drafted: 0 });
    }
    const metrics = await (await callWithEnv({}, '/metrics')).text();
    expect(metrics).toMatch(/moe_verification_passes_total [1-9]/);
    expect(metrics).toMatch(/moe_speculative_accepted_total \d+/);
  });
});

describe('a backend that dies during verification', () => {
  // all experts cold: every layer of every pass goes to the backend; the connection drops after a few replies
  const vars = (policy: string) => ({ ...SPEC, HOT_EXPERTS: 'none', BACKEND_URL: `${backend.proxyUrl}/close-after/9`, DEGRADED_POLICY: policy });

  it('DEGRADED_POLICY=error: what was streamed before the failure is a prefix of the exact output', async () => {
    const g = inject('greedy').find((x) => x.kind === 'completion')!;
    const res = await call(vars('error'), g, { stream: true });
    const text = await res.text();
    const events = text.split('\n\n').filter((f) => f.startsWith('data: {')).map((f) => JSON.parse(f.slice(6)));
    expect(events.at(-1)).toEqual({ error: expect.objectContaining({ code: 'backend_unavailable' }) });
    const streamed = streamedText('completion', events.slice(0, -1));
    expect(g.text.startsWith(streamed)).toBe(true);
  });

  it('DEGRADED_POLICY=substitute: completes, flagged; the next request is exact again', async () => {
    const g = inject('greedy').find((x) => x.kind === 'completion')!;
    const events = await readSse(await call(vars('substitute'), g, { stream: true, stream_options: { include_usage: true } }));
    const usage = events.at(-1).usage;
    expect(usage.moe.degraded).toBe('unavailable');
    expect(usage.completion_tokens).toBe(g.maxTokens);
    const next = (await (await call({ ...SPEC, HOT_EXPERTS: 'none' }, g)).json()) as any;
    expect(next.choices[0].text).toBe(g.text);
  });
});

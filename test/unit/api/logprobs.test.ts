// Log probabilities through the routes on the default model: they are the log-softmax of the CLI's logits (1e-4),
// echo + max_tokens 0 gives the CLI's perplexity, streams carry the same values as whole answers, bad values 400.
import { beforeAll, describe, expect, it } from 'vitest';
import { scoreTokens } from '../../../tools/score';
import { perplexity, textTokens } from '../../../tools/perplexity';
import { localApp, sseEvents, type LocalApp } from '../../helpers/local-app';

let app: LocalApp;
beforeAll(async () => {
  app = await localApp();
}, 60_000);

function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (v) => v - lse);
}

const PROMPT = 'Once upon a time, the experts';

describe('completions logprobs', () => {
  it('each generated token and its alternatives are the log-softmax of the CLI logits after prompt + earlier tokens', async () => {
    const r = await app.post('/v1/completions', { model: 'default', prompt: PROMPT, max_tokens: 6, temperature: 0, logprobs: 3 });
    expect(r.status).toBe(200);
    const lp = r.json.choices[0].logprobs;
    expect(lp.tokens.length).toBe(r.json.usage.completion_tokens);
    expect(lp.tokens.join('')).toBe(r.json.choices[0].text);
    // the generated ids: re-encode text piece by piece is ambiguous, so follow the model's own greedy choices
    const prompt = app.model.encode(PROMPT);
    const ids: number[] = [];
    let logits = await scoreTokens(app.model, prompt);
    for (let i = 0; i < lp.tokens.length; i++) {
      const ls = logSoftmax(logits[logits.length - 1]!);
      const best = ls.indexOf(Math.max(...ls));
      expect(lp.token_logprobs[i]).toBeCloseTo(ls[best]!, 4);
      const top = Object.values(lp.top_logprobs[i]) as number[];
      const sorted = [...ls].sort((a, b) => b - a).slice(0, 3);
      expect(top.length).toBeGreaterThan(0);
      for (const v of top) expect(sorted.some((s) => Math.abs(s - v) < 1e-4)).toBe(true);
      expect(Math.max(...top)).toBeCloseTo(sorted[0]!, 4);
      ids.push(best);
      logits = await scoreTokens(app.model, [...prompt, ...ids]);
    }
  });

  it('echo with max_tokens 0 scores the prompt: the CLI perplexity total, the first token null', async () => {
    const text = 'The little dragon flew over the hills and found a quiet lake.';
    const r = await app.post('/v1/completions', { model: 'default', prompt: text, max_tokens: 0, echo: true, logprobs: 1 });
    expect(r.status).toBe(200);
    const choice = r.json.choices[0];
    expect(choice.text).toBe(text);
    expect(r.json.usage.completion_tokens).toBe(0);
    expect(choice.logprobs.token_logprobs[0]).toBeNull();
    expect(choice.logprobs.top_logprobs[0]).toBeNull();
    const scores = choice.logprobs.token_logprobs.slice(1) as number[];
    const ppl = await perplexity(app.model, textTokens(app.model, text));
    expect(scores.length).toBe(ppl.tokens);
    const total = scores.reduce((s, v) => s + v, 0);
    expect(total).toBeCloseTo(-ppl.nll * ppl.tokens, 3);
  });

  it('streamed: the same tokens and values as the whole answer, echo first', async () => {
    const body = { model: 'default', prompt: PROMPT, max_tokens: 5, temperature: 0, logprobs: 2, echo: true };
    const whole = (await app.post('/v1/completions', body)).json.choices[0];
    const events = sseEvents((await app.post('/v1/completions', { ...body, stream: true })).text);
    const tokens = events.flatMap((e) => e.choices[0]?.logprobs?.tokens ?? []);
    const values = events.flatMap((e) => e.choices[0]?.logprobs?.token_logprobs ?? []);
    const offsets = events.flatMap((e) => e.choices[0]?.logprobs?.text_offset ?? []);
    expect(events[0].choices[0].text).toBe(PROMPT);
    expect(events.map((e) => e.choices[0]?.text ?? '').join('')).toBe(whole.text);
    expect(tokens).toEqual(whole.logprobs.tokens);
    expect(values).toEqual(whole.logprobs.token_logprobs);
    expect(offsets).toEqual(whole.logprobs.text_offset);
  });

  it('best_of returns the generation with the highest log probability per token, usage counting all of them', async () => {
    const body = { model: 'default', prompt: PROMPT, max_tokens: 6, temperature: 1, seed: 11 };
    const singles = [];
    for (let i = 0; i < 3; i++) singles.push((await app.post('/v1/completions', { ...body, seed: 11 + i, logprobs: 0 })).json);
    const mean = (r: any) => r.choices[0].logprobs.token_logprobs.reduce((a: number, b: number) => a + b, 0) / r.choices[0].logprobs.token_logprobs.length;
    const best = [...singles].sort((a, b) => mean(b) - mean(a))[0];
    const r = await app.post('/v1/completions', { ...body, best_of: 3 });
    expect(r.status).toBe(200);
    expect(r.json.choices).toHaveLength(1);
    expect(r.json.choices[0].text).toBe(best.choices[0].text);
    expect(r.json.choices[0].logprobs).toBeNull(); // not asked for
    expect(r.json.usage.completion_tokens).toBe(singles.reduce((s, x) => s + x.usage.completion_tokens, 0));
    for (const bad of [{ best_of: 2, n: 3 }, { best_of: 2, stream: true }]) {
      const e = await app.post('/v1/completions', { ...body, ...bad });
      expect(e.status).toBe(400);
      expect(e.json.error.param).toBe('best_of');
    }
  });

  it('refuses out-of-range values with a 400 naming the field', async () => {
    const r = await app.post('/v1/completions', { model: 'default', prompt: PROMPT, logprobs: 6 });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('logprobs');
  });
});

describe('chat logprobs', () => {
  const messages = [{ role: 'user', content: 'Tell me about dragons.' }];

  it('content entries with bytes and top_logprobs, sampled tokens among the most likely, whole = streamed', async () => {
    const body = { model: 'default', messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 4 };
    const r = await app.post('/v1/chat/completions', body);
    expect(r.status).toBe(200);
    const content = r.json.choices[0].logprobs.content;
    expect(content.length).toBe(r.json.usage.completion_tokens);
    expect(content.map((c: any) => c.token).join('')).toBe(r.json.choices[0].message.content);
    for (const c of content) {
      expect(c.top_logprobs.length).toBe(4);
      expect(c.top_logprobs[0].logprob).toBeCloseTo(c.logprob, 6); // greedy picks the most likely
      expect(Buffer.from(c.bytes).toString('utf8')).toBe(c.token);
      expect(c.top_logprobs.map((t: any) => t.logprob)).toEqual([...c.top_logprobs.map((t: any) => t.logprob)].sort((a, b) => b - a));
    }
    // the first token's values against the CLI's logits after the chat prompt
    const ls = logSoftmax((await scoreTokens(app.model, app.model.encodeChat(messages as never))).at(-1)!);
    expect(content[0].logprob).toBeCloseTo(Math.max(...ls), 4);
    const events = sseEvents((await app.post('/v1/chat/completions', { ...body, stream: true })).text);
    expect(events.flatMap((e) => e.choices[0]?.logprobs?.content ?? [])).toEqual(content);
  });

  it('top_logprobs without logprobs, or over 20, is a 400 naming top_logprobs', async () => {
    for (const extra of [{ top_logprobs: 2 }, { logprobs: true, top_logprobs: 21 }]) {
      const r = await app.post('/v1/chat/completions', { model: 'default', messages, ...extra });
      expect(r.status).toBe(400);
      expect(r.json.error.param).toBe('top_logprobs');
    }
  });
});

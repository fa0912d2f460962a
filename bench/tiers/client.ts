// The tiers bench's client: prompts of an exact token count (the model's own tokenizer) and one streamed
// /v1/completions timed from outside: time to the first token's chunk, decode tokens/s over the chunks after it
// (the SSE carries no timings; workerd's clock moves in whole ms anyway), and the final usage (usage.moe).
import { loadCodec } from '../../src/engine/load';
import type { Manifest } from '../../src/format/manifest';
import { fsSource } from '../../src/store/source-fs';
import type { Encode } from '../prompt-of';

export async function encoderOf(dir: string, manifest: Manifest): Promise<Encode> {
  const codec = await loadCodec(fsSource(dir), manifest);
  return (t) => codec.encode(t);
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  moe?: Record<string, unknown>;
}

export interface Timed {
  status: number;
  /** request sent -> first chunk with a token */
  ttftMs: number;
  totalMs: number;
  /** (completion tokens - 1) / (last token chunk - first token chunk) */
  decodeTokPerS: number | null;
  promptTokens: number;
  completionTokens: number;
  finishReason: string | null;
  moe: Record<string, unknown> | null;
  degraded: string | null;
  error?: string;
}

/** One streamed completion, greedy; gives up after `timeoutMs`. */
export async function streamedCompletion(url: string, model: string, prompt: string, maxTokens: number, timeoutMs: number): Promise<Timed> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const degraded = res.headers.get('x-moe-degraded');
  if (res.status !== 200 || !res.body) {
    return { status: res.status, ttftMs: NaN, totalMs: performance.now() - t0, decodeTokPerS: null, promptTokens: 0, completionTokens: 0, finishReason: null, moe: null, degraded, error: (await res.text()).slice(0, 500) };
  }
  let first = NaN;
  let last = NaN;
  let usage = null as Usage | null;
  let finishReason: string | null = null;
  let buffered = '';
  const decoder = new TextDecoder();
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    const now = performance.now();
    buffered += decoder.decode(bytes, { stream: true });
    let cut: number;
    while ((cut = buffered.indexOf('\n\n')) >= 0) {
      const frame = buffered.slice(0, cut);
      buffered = buffered.slice(cut + 2);
      if (!frame.startsWith('data: {')) continue;
      const ev = JSON.parse(frame.slice(6)) as { choices: { text: string; finish_reason: string | null }[]; usage?: Usage; error?: unknown };
      if (ev.error) throw new Error(`stream error: ${JSON.stringify(ev.error)}`);
      if (ev.usage) usage = ev.usage;
      const c = ev.choices[0];
      if (!c) continue;
      if (c.finish_reason) finishReason = c.finish_reason;
      else {
        // one chunk per generated token (src/routes/completions.ts), its text possibly empty mid-character
        if (Number.isNaN(first)) first = now;
        last = now;
      }
    }
  }
  const totalMs = performance.now() - t0;
  if (!usage) throw new Error('the stream ended without its usage chunk');
  const n = usage.completion_tokens;
  return {
    status: 200,
    ttftMs: first - t0,
    totalMs,
    decodeTokPerS: n > 1 && last > first ? ((n - 1) * 1000) / (last - first) : null,
    promptTokens: usage.prompt_tokens,
    completionTokens: n,
    finishReason,
    moe: usage.moe ?? null,
    degraded: degraded ?? ((usage.moe?.degraded as string | null | undefined) ?? null),
  };
}

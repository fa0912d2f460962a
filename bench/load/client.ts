// The load test's client: streaming chat completions over keep-alive HTTP (node:http; fetch costs ~3x more
// per call), read as SSE, timing the first token and counting what arrived; every way a request can fail
// (status, network, an in-band error event, a stream without [DONE]) is an error, with its reason.
import { Agent, request } from 'node:http';

export interface StreamResult {
  ok: boolean;
  /** ms from sending the request to the first chunk with text */
  ttftMs: number | null;
  totalMs: number;
  completionTokens: number;
  error: string | null;
}

export function keepAliveAgent(sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets });
}

/** POSTs one streaming chat request (stream_options.include_usage) and reads it to the end. */
export function streamChat(url: string, body: Record<string, unknown>, agent: Agent, timeoutMs: number): Promise<StreamResult> {
  const started = performance.now();
  const payload = JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } });
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: Omit<StreamResult, 'totalMs'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...r, totalMs: performance.now() - started });
    };
    const req = request(`${url}/v1/chat/completions`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      timeout: timeoutMs,
    });
    req.on('timeout', () => {
      req.destroy(new Error(`no progress within ${timeoutMs} ms`));
    });
    req.on('error', (e) => done({ ok: false, ttftMs: null, completionTokens: 0, error: `network: ${e.message}` }));
    req.on('response', (res) => {
      let buffered = '';
      let ttft: number | null = null;
      let tokens = 0;
      let sawDone = false;
      let failure: string | null = res.statusCode === 200 ? null : `HTTP ${res.statusCode}`;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const frame = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (!frame.startsWith('data: ')) {
            failure ??= `bad frame ${frame.slice(0, 80)}`;
            continue;
          }
          const data = frame.slice(6);
          if (data === '[DONE]') {
            sawDone = true;
            continue;
          }
          let event: any;
          try {
            event = JSON.parse(data);
          } catch {
            failure ??= `unparsable event ${data.slice(0, 80)}`;
            continue;
          }
          if (event.error) failure ??= `in-band error ${event.error.code}: ${event.error.message}`;
          if (ttft === null && event.choices?.[0]?.delta?.content) ttft = performance.now() - started;
          if (event.usage) tokens = event.usage.completion_tokens;
        }
      });
      res.on('end', () => {
        if (failure === null && !sawDone) failure = 'stream ended without [DONE]';
        if (failure !== null && res.statusCode !== 200) failure += `: ${buffered.slice(0, 200)}`;
        done({ ok: failure === null, ttftMs: ttft, completionTokens: tokens, error: failure });
      });
      res.on('error', (e) => done({ ok: false, ttftMs: ttft, completionTokens: tokens, error: `response: ${e.message}` }));
    });
    req.end(payload);
  });
}

/** The q-quantile (0..1) of `xs` by linear interpolation; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

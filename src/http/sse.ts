// Server-sent events for streamed completions: `data: <json>\n\n` per event, then `data: [DONE]\n\n`.
// Pull-based, so a token is generated only when the client has read the previous one (backpressure),
// and cancelling the body (client gone) aborts the generation and runs its cleanup.
import { describeError } from './errors';

const encoder = new TextEncoder();

export function sseResponse(events: AsyncGenerator<unknown, void, void>, onCancel: (reason: unknown) => void): Response {
  let finished = false;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const r = await events.next();
          if (r.done) {
            finished = true;
            controller.enqueue(encoder.encode('data: [DONE]\n\n'));
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(`data: ${JSON.stringify(r.value)}\n\n`));
        } catch (err) {
          // Headers are gone already: report the error in-band, as OpenAI does, then end the stream.
          finished = true;
          try {
            controller.enqueue(encoder.encode(`data: ${JSON.stringify(describeError(err).body)}\n\n`));
            controller.close();
          } catch {
            // the client cancelled while we were failing; nothing left to tell
          }
        }
      },
      async cancel(reason) {
        if (finished) return;
        finished = true;
        onCancel(reason);
        await events.return();
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' },
  });
}

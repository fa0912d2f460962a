// The Hono app over the CLI's local default model (every expert resident, in Node): route tests that need real
// output (logprobs, grammars, tool calls) without starting workerd. `post` sends JSON and parses the answer.
import { createApp } from '../../src/app';
import type { AppEnv } from '../../src/config/env';
import { loadTextModel, type LocalModel } from '../../src/engine/load';
import { provideXgrammarWasmFromFile } from '../../src/grammar/load-node';
import { fsSource } from '../../src/store/source-fs';
import { makeKernels } from '../../tools/kernels-node';

export interface LocalApp {
  model: LocalModel;
  post(path: string, body: unknown): Promise<{ status: number; json: any; text: string }>;
}

export async function localApp(dir = 'models/default'): Promise<LocalApp> {
  provideXgrammarWasmFromFile(); // structured output, as the Worker entry provides it in workerd
  const model = await loadTextModel(fsSource(dir), await makeKernels());
  const app = createApp({ getModel: async () => model });
  const env = { MODEL_ID: 'default' } as unknown as AppEnv;
  return {
    model,
    async post(path, body) {
      const res = await app.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, env);
      const text = await res.text();
      let json: any = null;
      try {
        json = JSON.parse(text);
      } catch {
        // a stream: the caller parses `text`
      }
      return { status: res.status, json, text };
    },
  };
}

/** The JSON payloads of an SSE body, without the closing [DONE]. */
export function sseEvents(text: string): any[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
    .map((l) => JSON.parse(l.slice(6)));
}

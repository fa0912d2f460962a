// The Worker entry: by ROLE, the front (the Hono API over a per-isolate model cache that loads the model from R2)
// or an expert shard (src/shard/app.ts: a slice of experts behind the front's service binding). One bundle, so a
// deployment builds once and every shard runs exactly the front's kernels.
import { createApp } from './app';
import { provideXgrammarWasmToWorker } from './grammar/load-worker';
import type { AppEnv } from './config/env';
import { loadModelFromR2 } from './runtime/load-model';
import { ModelCache } from './runtime/model-cache';
import { createShardApp } from './runtime/shard-app';

provideXgrammarWasmToWorker(); // structured output: constrained decoding with xgrammar
const front = createApp(new ModelCache(loadModelFromR2));
const shard = createShardApp();

export default {
  fetch(req: Request, env: AppEnv, ctx: ExecutionContext): Response | Promise<Response> {
    return (env.ROLE ?? '').trim() === 'shard' ? shard.fetch(req, env, ctx) : front.fetch(req, env, ctx);
  },
} satisfies ExportedHandler<AppEnv>;

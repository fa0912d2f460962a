// The Hono app: OpenAI-compatible routes over one served model, the admin routes (hot set, statistics, dashboard) and /metrics,
// with every error mapped to OpenAI's error shape in one place (onError + notFound).
import { Hono } from 'hono';
import type { AppEnv } from './config/env';
import { requireApiKey } from './http/auth';
import { errorResponse, RouteNotFoundError } from './http/errors';
import { metrics } from './runtime/metrics';
import { getHotSet, putHotSet, requireAdmin } from './routes/admin';
import { getDashboard } from './routes/admin-dashboard';
import { getStats, planHotSetRoute } from './routes/admin-stats';
import { chatCompletions } from './routes/chat';
import { completions } from './routes/completions';
import { health } from './routes/health';
import type { ModelProvider } from './routes/inference';
import { getMetrics } from './routes/metrics';
import { getModel, listModels } from './routes/models';

const COUNTED = new Set(['/v1/chat/completions', '/v1/completions', '/v1/models', '/healthz', '/admin/hot-set', '/admin/hot-set/plan', '/admin/stats', '/admin']);

export function createApp(provider: ModelProvider) {
  const app = new Hono<{ Bindings: AppEnv }>();

  app.use('*', async (c, next) => {
    await next();
    metrics.request(COUNTED.has(c.req.path) ? c.req.path : 'other', c.res.status);
  });
  app.get('/healthz', health(provider));
  app.get('/metrics', getMetrics);

  app.use('/v1/*', requireApiKey);
  app.get('/v1/models', listModels);
  app.get('/v1/models/:id', getModel);
  app.post('/v1/chat/completions', chatCompletions(provider));
  app.post('/v1/completions', completions(provider));

  app.use('/admin/*', requireAdmin);
  app.get('/admin/hot-set', getHotSet(provider));
  app.put('/admin/hot-set', putHotSet(provider));
  app.post('/admin/hot-set/plan', planHotSetRoute(provider));
  app.get('/admin/stats', getStats(provider));
  app.get('/admin', getDashboard); // '/admin/*' covers '/admin' too

  app.notFound((c) => errorResponse(new RouteNotFoundError(c.req.method, c.req.path)));
  app.onError((err, c) => {
    // A client that went away cannot read an answer; 499 keeps it out of the 5xx statistics.
    if (c.req.raw.signal.aborted) return new Response(null, { status: 499 });
    const res = errorResponse(err);
    // load shedding (503 with Retry-After) is expected under load: counted in /metrics, not logged with a stack
    if (res.status >= 500 && !res.headers.has('retry-after')) console.error(`${c.req.method} ${c.req.path} -> ${res.status}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return res;
  });
  return app;
}

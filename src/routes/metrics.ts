// GET /metrics: the isolate's counters in Prometheus text format (requests, tokens, hot hits, cold calls,
// remote time, degraded generations, expert routings) and the WASM memory gauges of the served model.
import { appConfig } from '../config/env';
import { metrics } from '../runtime/metrics';
import type { AppContext } from './inference';

export function getMetrics(c: AppContext): Response {
  return c.body(metrics.render(servedModelIds(c)), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
}

/** The deployment's MODEL_ID, whose gauges read 0 until it loads; none when the config is broken (/metrics still answers). */
function servedModelIds(c: AppContext): string[] {
  try {
    return [appConfig(c.env).modelId];
  } catch {
    return [];
  }
}

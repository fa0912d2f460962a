// GET /metrics: the isolate's counters in Prometheus text format (requests, tokens, hot hits, cold calls,
// remote time, degraded generations).
import { metrics } from '../runtime/metrics';
import type { AppContext } from './inference';

export function getMetrics(c: AppContext): Response {
  return c.body(metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
}

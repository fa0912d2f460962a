// Two answers read off the estimates: the cheapest edge coverage whose per-token latency meets a target, and the
// traffic (output tokens a day) at which the split deployment's cost per 1M tokens crosses an alternative's.
import { estimateSplit, type CostContext, type Estimate } from './estimate';

export interface CoverageOption {
  coverage: number;
  hitRate: number;
  estimate: Estimate;
}

/** Hit rate at a coverage: the planner's expectation from routing statistics, or the coverage itself without. */
export type HitRateAt = (coverage: number) => number;

export function coverageSweep(ctx: CostContext, hitRateAt: HitRateAt, steps = 20): CoverageOption[] {
  const out: CoverageOption[] = [];
  for (let i = 0; i <= steps; i++) {
    const c = i / steps;
    const h = hitRateAt(c);
    out.push({ coverage: c, hitRate: h, estimate: estimateSplit(ctx, c, h, `${Math.round(c * 100)}% at the edge`) });
  }
  return out;
}

/** Cheapest option (output + input per 1M, at the request's shape) within the latency target; null if none meets it. */
export function cheapestWithin(options: readonly CoverageOption[], targetMs: number, promptTokens: number, outputTokens: number): CoverageOption | null {
  const cost = (e: Estimate) => e.perMOutput.total + (e.perMInput.total * promptTokens) / outputTokens;
  let best: CoverageOption | null = null;
  for (const o of options) {
    if (o.estimate.decodeMs === null || o.estimate.decodeMs > targetMs) continue;
    if (!best || cost(o.estimate) < cost(best.estimate) - 1e-12) best = o;
  }
  return best;
}

/** Blended $ per 1M output tokens (input tokens of those requests included). */
export function blended(e: Estimate, promptTokens: number, outputTokens: number): number {
  return e.perMOutput.total + (e.perMInput.total * promptTokens) / outputTokens;
}

/**
 * Output tokens a day at which `a` and `b` cost the same per 1M tokens, searched on a log grid from 1e3 to 1e12
 * and refined by bisection; null when one is cheaper over the whole range. `cheaperBelow` names which one wins at
 * less traffic.
 */
export function crossover(ctx: CostContext, a: (c: CostContext) => Estimate, b: (c: CostContext) => Estimate): { tokensPerDay: number; cheaperBelow: string } | null {
  const diff = (t: number) => {
    const c = { ...ctx, tokensPerDay: t };
    return blended(a(c), ctx.promptTokens, ctx.outputTokens) - blended(b(c), ctx.promptTokens, ctx.outputTokens);
  };
  let lo = 1e3;
  let dlo = diff(lo);
  for (let t = lo * 2; t <= 1e12; t *= 2) {
    const d = diff(t);
    if (Math.sign(d) !== Math.sign(dlo) && d !== 0) {
      let l = lo;
      let r = t;
      for (let i = 0; i < 40; i++) {
        const m = Math.sqrt(l * r);
        if (Math.sign(diff(m)) === Math.sign(dlo)) l = m;
        else r = m;
      }
      const c = { ...ctx, tokensPerDay: lo };
      return { tokensPerDay: Math.sqrt(l * r), cheaperBelow: dlo < 0 ? a(c).label : b(c).label };
    }
    lo = t;
    dlo = d;
  }
  return null;
}


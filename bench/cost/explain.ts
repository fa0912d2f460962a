// Why a prediction parts from its run by more than 20%, by the kind of run: the known gaps of the cost model,
// each stated with the number that shows it.
import type { Prediction } from './predict';

export function explain(rows: readonly Prediction[]): string[] {
  const off = rows.filter((r) => Math.abs(r.error) > 0.2);
  const out: string[] = [];
  if (!off.length) out.push('Every prediction is within 20%.');
  for (const r of off) out.push(`${r.run}, ${r.what}: ${(100 * r.error).toFixed(0)}%. ${reason(r)}`);
  return out;
}

function reason(r: Prediction): string {
  if (r.run.startsWith('bench:load') && r.what.startsWith('throughput')) {
    return 'The model counts the engine\'s compute (edge, backend) and finds it far from saturating one isolate; the run was bound elsewhere: per-request and per-event work the model leaves out (HTTP, JSON, the chat template, SSE framing, wrangler\'s proxy and the load client itself) on a 2-core machine shared by client, workerd, a 2-thread backend and other sessions (load average 6.7 at start). Measured, the whole machine spent ~2 cores / 399 tok/s = ~5 ms of CPU per token, against ~1 ms of model compute; the run also predates the kernels measured in shapes.json (2026-11-23 vs 2026-12-05).';
  }
  if (r.run.startsWith('bench:load') && r.what.startsWith('time to first token')) {
    return 'TTFT under load is the prompt\'s prefill plus the wait for the isolate, which the model takes from its throughput estimate: the same missing per-request overhead (above) makes the wait longer than predicted.';
  }
  if (r.run.startsWith('bench:tiers')) {
    return 'Every expert on the CPU backend: the backend\'s speed is taken from bench:split\'s experts (37 MiB, q8_0: 11 GB/s), and granite\'s are 1 MB q4_0 experts, eight per call, where the backend reaches far less: the run\'s usage.moe says 2,273 ms of remote time for 63 tokens, 36 ms a token or 1.5 ms per layer call, against 0.9 ms modelled (round trip 0.1 + overhead 0.09 + 8 x 0.98 MB / 11 GB/s). q4_0 also runs a little further from the memory bound than q8_0 at the edge (bench/results/shapes.md 2026-12-05 05:00, Node: 0.40-0.59 vs 0.60-0.80 of the bound). Measure the backend on the model served (npm run bench:backend -- --model <folder>) before trusting a split\'s latency.';
  }
  if (r.run.startsWith('bench:split') && r.what.startsWith('throughput')) {
    return 'With many generations the backend merges calls by (layer, expert), and a merged CPU call reads an expert\'s weights once for several tokens; the model charges the CPU backend per pair (its measured single-token cost), so it under-counts what merging saves as batches grow.';
  }
  if (r.run.startsWith('bench:split')) {
    return 'Two things the model does not see, both visible in the run of 2026-11-23. (1) The injected delay costs more than its nominal value: at 0% hot the measured round trip per layer call grows from 5.0 ms (0 ms injected) to 13.0 ms (5 ms injected) and 27.0 ms (20 ms): 2-3 ms beyond the delay once the proxy holds a reply (its timer and an extra process wake-up on a loaded 2-core machine, load 4.98). (2) The model takes each of the top-k picks as independently hot with the hit rate, so a layer has a cold pick with probability 1 - 0.5^2 = 0.75 at 50%; in the run both layers made a cold call on every token (20.0 ms of round trips per token, 2 calls of ~10 ms), the synthetic model\'s random router not spreading its picks evenly. With both, the 5 ms cell would be predicted at 1.8 + 2 x (5 + 3 + 3.6) = ~25 ms against 23.6 measured, the 20 ms cell at 1.8 + 2 x (20 + 2 + 3.6) = ~53 ms against 51.4.';
  }
  return 'unexplained';
}

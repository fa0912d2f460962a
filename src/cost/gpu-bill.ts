// What a day of GPU time is billed, from the seconds the GPU is busy: kept warm (whole GPUs, 24 h, at the
// provider's always-on rate) or scaled to zero (billed while a worker is up: busy time, or, when requests are
// sparse, each request's span plus the idle time the worker stays up after it, at the on-demand rate).
import type { GpuPrice } from './prices';

export type GpuMode = 'warm' | 'scale-to-zero';

export interface GpuBill {
  mode: GpuMode;
  busySecondsPerDay: number;
  billedSecondsPerDay: number;
  gpus: number;
  dollarsPerDay: number;
}

const DAY = 86_400;

/**
 * `requestsPerDay` arrive at random (Poisson); each keeps a scaled-to-zero worker up for `requestSpanS` plus
 * `idleS`, so the worker is up a share 1 - exp(-rate x (span + idle)) of the day; never billed below busy time.
 */
export function gpuBill(gpu: GpuPrice, mode: GpuMode, busySecondsPerDay: number, requestsPerDay: number, requestSpanS: number, idleS: number): GpuBill {
  // a GPU busy the whole day is one GPU (a memory-bound batch absorbs the traffic: busy ~ 1 day exactly)
  const gpus = Math.max(1, Math.ceil(busySecondsPerDay / DAY - 1e-6));
  if (mode === 'warm') {
    const billed = gpus * DAY;
    return { mode, busySecondsPerDay, billedSecondsPerDay: billed, gpus, dollarsPerDay: billed * gpu.warmPerSecond };
  }
  const up = DAY * (1 - Math.exp(-(requestsPerDay / DAY) * (requestSpanS + idleS)));
  const billed = Math.max(busySecondsPerDay, up);
  return { mode, busySecondsPerDay, billedSecondsPerDay: billed, gpus, dollarsPerDay: billed * gpu.scaleToZeroPerSecond };
}

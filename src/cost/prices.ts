// docs/prices.json, parsed once into frozen types: the published prices (Workers, R2, Workers AI, GPU $/s at named
// providers) and GPU specifications the cost model reads, each with where and when it was read.
import { z } from 'zod';
import { CostInputError } from './errors';

const Cited = { source: z.string().url(), read: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), verified: z.boolean() };

const GpuSchema = z.object({
  name: z.string().min(1),
  memoryGb: z.number().positive(),
  bandwidthGBps: z.number().positive(),
  fp16TensorTflops: z.number().positive(),
  specSource: z.string(),
  provider: z.string(),
  warmPerSecond: z.number().positive(),
  scaleToZeroPerSecond: z.number().positive(),
  note: z.string().optional(),
  ...Cited,
});

export const PricesSchema = z.object({
  currency: z.literal('USD'),
  workers: z.object({ requestsPerMillion: z.number().nonnegative(), cpuMsPerMillion: z.number().nonnegative(), ...Cited }),
  r2: z.object({ storagePerGbMonth: z.number().nonnegative(), classAPerMillion: z.number().nonnegative(), classBPerMillion: z.number().nonnegative(), ...Cited }),
  workersAi: z.object({
    ...Cited,
    models: z.array(z.object({ id: z.string(), inputPerMillion: z.number().nonnegative(), outputPerMillion: z.number().nonnegative(), params: z.string(), comparableTo: z.array(z.string()), why: z.string() })),
  }),
  gpus: z.array(GpuSchema).min(1),
  scaleToZeroIdleS: z.number().nonnegative(),
});
export type Prices = z.infer<typeof PricesSchema>;
export type GpuPrice = z.infer<typeof GpuSchema>;
export type WorkersAiModel = Prices['workersAi']['models'][number];

export function parsePrices(json: unknown): Prices {
  const r = PricesSchema.safeParse(json);
  if (!r.success) throw new CostInputError(`docs/prices.json is malformed: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return Object.freeze(r.data);
}

/** The named GPU (case-insensitive), or a refusal naming the ones priced. */
export function gpuNamed(prices: Prices, name: string): GpuPrice {
  const g = prices.gpus.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!g) throw new CostInputError(`no price for GPU "${name}" in docs/prices.json; priced: ${prices.gpus.map((x) => x.name).join(', ')}`);
  return g;
}

/** The Workers AI model listed as comparable to this model name, if any. */
export function workersAiFor(prices: Prices, modelName: string): WorkersAiModel | null {
  return prices.workersAi.models.find((m) => m.comparableTo.includes(modelName)) ?? null;
}

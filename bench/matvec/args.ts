// Node only: command-line options of the mat-vec benchmark (shared by node.ts and run.ts).
import { parseArgs } from 'node:util';
import { DEFAULT_OPTIONS, type MeasureOptions } from './measure';

export interface BenchArgs extends MeasureOptions {
  only: 'node' | 'workerd' | null; // run one runtime only (run.ts)
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: 'string' },
      'min-ms': { type: 'string' },
      slices: { type: 'string' },
      'pool-mb': { type: 'string' },
      'stream-mb': { type: 'string' },
      only: { type: 'string' },
    },
  });
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const only = values.only ?? null;
  if (only !== null && only !== 'node' && only !== 'workerd') throw new Error(`--only must be node or workerd, got ${only}`);
  return {
    rounds: num(values.rounds, DEFAULT_OPTIONS.rounds),
    minMs: num(values['min-ms'], DEFAULT_OPTIONS.minMs),
    slices: num(values.slices, DEFAULT_OPTIONS.slices),
    poolBytes: num(values['pool-mb'], DEFAULT_OPTIONS.poolBytes / 2 ** 20) * 2 ** 20,
    streamBytes: num(values['stream-mb'], DEFAULT_OPTIONS.streamBytes / 2 ** 20) * 2 ** 20,
    only,
  };
}

// Node side of the hardening tests inside workerd: the fuzz settings (FUZZ_RUNS, FUZZ_SEED from the
// environment of `npm test` / `npm run fuzz`) and one more real backend on loopback that only
// disconnect.test.ts uses, so that its /metrics session gauge counts that test's sessions alone.
import type { TestProject } from 'vitest/node';
import { startBackend } from '../../tools/dev/backend';
import { BACKEND_TOKEN } from './cases';

/** fast-check settings of the fuzz tests. */
export interface FuzzSettings {
  /** null: each test's own bounded count */
  runs: number | null;
  seed: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    fuzz: FuzzSettings;
    /** base URL of the backend reserved for disconnect.test.ts (token BACKEND_TOKEN) */
    quietBackendUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runs = Number(process.env.FUZZ_RUNS);
  project.provide('fuzz', { runs: runs > 0 ? runs : null, seed: Number(process.env.FUZZ_SEED ?? 20261123) });
  const quiet = await startBackend({ token: BACKEND_TOKEN, args: ['--threads', '1'] });
  project.provide('quietBackendUrl', quiet.url);
  return () => quiet.stop();
}

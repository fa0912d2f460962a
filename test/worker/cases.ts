// Fixtures shared by the Node side (global-setup.ts) and the workerd side of the worker tests.

/** A copy of the model with one flipped byte in this object is seeded under this MODEL_ID. */
export const CORRUPT_MODEL_ID = 'corrupt';
export const CORRUPT_OBJECT = 'trunk.bin';
/** A clean copy of the model for the admin tests, whose hot-set.json must not affect other tests. */
export const HOTSET_MODEL_ID = 'hotset';

/** Prompts whose greedy (temperature 0) output the Worker must reproduce exactly as the CLI prints it. */
export interface GreedyCase {
  kind: 'chat' | 'completion';
  input: string;
  maxTokens: number;
}

export interface GreedyExpectation extends GreedyCase {
  text: string;
}

export const GREEDY_CASES: GreedyCase[] = [
  { kind: 'completion', input: 'Once upon a time', maxTokens: 16 },
  { kind: 'chat', input: 'Tell me about experts.', maxTokens: 16 },
];

/** The token the test backends expect (BACKEND_TOKEN). */
export const BACKEND_TOKEN = 'worker-tests-backend-token';
/** ADMIN_TOKEN of the worker tests. */
export const ADMIN_TOKEN = 'worker-tests-admin-token';

/** The backends the Node side started for the worker tests. */
export interface BackendInfo {
  /** the real backend on loopback */
  url: string;
  token: string;
  /** tools/dev/fault-proxy.ts: append a mode, e.g. `${proxyUrl}/delay/2000` */
  proxyUrl: string;
  /** a loopback port nobody listens on */
  deadUrl: string;
  /** ADMIN_TOKEN of the Worker under test */
  adminToken: string;
  /** two replicas of the real backend (same token) serving experts 0-3 and 4-7 of every layer (BACKENDS) */
  replicas: [string, string];
}

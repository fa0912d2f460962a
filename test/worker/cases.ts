// Fixtures shared by the Node side (global-setup.ts) and the workerd side of the worker tests.

/** A copy of the model with one flipped byte in this object is seeded under this MODEL_ID. */
export const CORRUPT_MODEL_ID = 'corrupt';
export const CORRUPT_OBJECT = 'trunk.bin';

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

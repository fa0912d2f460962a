// Prompts whose greedy (temperature 0) output the Worker must reproduce exactly as the CLI prints it.
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

// bench:shapes' options (bench/shapes/args.ts): defaults, --kv lists, and the errors a mistyped run gets before it starts.
import { describe, expect, it } from 'vitest';
import { GRANITE_MODELS, parseShapesArgs } from '../../../bench/shapes/args';

describe('parseShapesArgs', () => {
  it('defaults: both granite-shaped models, the default model, f32 KV (the reference), 3 rounds, wllama on up to 128 tokens, recorded', () => {
    const o = parseShapesArgs([]);
    expect(o.models).toEqual(GRANITE_MODELS);
    expect(o).toMatchObject({ defaultModel: true, kv: ['f32'], rounds: 3, prompts: [128, 1024], decode: 128, wllama: true, wllamaMaxPrompt: 128, record: true, note: null });
  });

  it('--kv all is every type the Worker offers; a list keeps its order without repeats', () => {
    expect(parseShapesArgs(['--kv', 'all']).kv).toEqual(['f32', 'f16', 'q8_0', 'q4_0']);
    expect(parseShapesArgs(['--kv', 'q4_0,f16,q4_0']).kv).toEqual(['q4_0', 'f16']);
  });

  it('an unknown --kv value is refused by name with the accepted values', () => {
    expect(() => parseShapesArgs(['--kv', 'q8'])).toThrow(/unknown --kv value "q8": one or more of f32, f16, q8_0, q4_0/);
    expect(() => parseShapesArgs(['--kv', 'f32,bf16'])).toThrow(/"bf16"/);
  });

  it('repeatable --model, --note, short runs', () => {
    const o = parseShapesArgs(['--model', 'a', '--model', 'b', '--note', 'relaxed q4 kernel', '--rounds', '1', '--prompts', '128', '--no-default-model', '--no-wllama', '--wllama-max-prompt', '1024', '--no-record']);
    expect(o).toMatchObject({ models: ['a', 'b'], note: 'relaxed q4 kernel', rounds: 1, prompts: [128], defaultModel: false, wllama: false, wllamaMaxPrompt: 1024, record: false });
  });

  it('counts must be positive integers; unknown options are refused', () => {
    expect(() => parseShapesArgs(['--rounds', '0'])).toThrow(/--rounds must be a positive integer/);
    expect(() => parseShapesArgs(['--prompts', '128,x'])).toThrow(/--prompts must be a positive integer, got "x"/);
    expect(() => parseShapesArgs(['--round', '2'])).toThrow(/Unknown option '--round'/);
  });
});

// The context rule, in one place, with OpenAI's errors: a prompt of at least one token, a completion length
// below the context, and prompt + completion within it. Whoever builds a GenerateRequest (the completion
// routes, the CLI) applies it once, before anything is allocated; TextModel.generate takes it as given.
import { ContextOverflowError, InvalidRequestError } from '../common/errors';

/** The request fields an error names. */
export interface ContextParams {
  /** 'prompt' or 'messages' */
  prompt: string;
  /** 'max_tokens' or 'max_completion_tokens' */
  maxTokens: string;
}

/**
 * `requested`: the completion length the request asks for; null: the model's default, which the caller
 * caps at what the context leaves (so at least one token must fit beside the prompt).
 */
export function checkContext(contextLength: number, promptTokens: number, requested: number | null, params: ContextParams = { prompt: 'prompt', maxTokens: 'max_tokens' }): void {
  if (promptTokens === 0) throw new InvalidRequestError(`'${params.prompt}' is empty`, params.prompt, 'invalid_value');
  if (requested !== null && requested >= contextLength) {
    throw new InvalidRequestError(
      `${params.maxTokens} is too large: ${requested}. This model's maximum context length is ${contextLength} tokens, so ${params.maxTokens} must be less than that`,
      params.maxTokens,
      'invalid_value',
    );
  }
  if (promptTokens + (requested ?? 1) > contextLength) throw new ContextOverflowError(contextLength, promptTokens, requested ?? 1, params.prompt);
}

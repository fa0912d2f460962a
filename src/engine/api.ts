// The engine as the HTTP layer sees it: a loaded text model that turns a prompt into a stream of text.
// Routes depend on this interface only, never on kernels or tensors.

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string;
}

export interface SamplingParams {
  /** 0 means greedy (argmax). */
  temperature: number;
  topP: number;
  /** 0 means no top-k cut. */
  topK: number;
  /** Same seed, same params, same prompt -> same output. Random when absent. */
  seed?: number;
}

export interface GenerateRequest {
  promptTokens: number[];
  maxTokens: number;
  sampling: SamplingParams;
  /** Generation stops before any of these strings; the stop string is not emitted. */
  stop: string[];
  /** Aborting stops the generation at the next token and frees its memory. */
  signal?: AbortSignal;
}

/** One streamed piece of output: text that is final (never retracted by stop-sequence handling). */
export interface GenerateChunk {
  text: string;
}

export type FinishReason = 'stop' | 'length';

export interface GenerateResult {
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

export interface TextModel {
  /** The model id clients pass as `model`. */
  readonly id: string;
  readonly contextLength: number;
  readonly defaults: { temperature: number; topP: number; maxTokens: number };
  /** Tokenise raw text (adds BOS when the model's tokenizer config says so). */
  encode(text: string): number[];
  /** Render messages with the model's chat template (generation prompt appended) and tokenise. */
  encodeChat(messages: ChatMessage[]): number[];
  /**
   * Generate; yields text chunks as they become final and returns the summary.
   * Throws ContextOverflowError (see src/errors.ts) when prompt + maxTokens exceed the context.
   */
  generate(req: GenerateRequest): AsyncGenerator<GenerateChunk, GenerateResult, void>;
}

// The engine as the HTTP layer sees it: a loaded text model that turns a prompt into a stream of text.
// Routes depend on this interface only, never on kernels or tensors, nor on which model class they hold.
import type { Architecture } from '../format/manifest';
import type { IdRange } from '../protocol/id-range';
import type { KvCacheType } from './kv-cache';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | 'developer';
  content: string;
  /** an assistant turn's tool calls, arguments parsed (chat templates print them with `tojson`) */
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: unknown } }[];
  /** a tool turn: the call it answers */
  tool_call_id?: string;
  name?: string;
}

/** A function the model may call, as OpenAI's `tools` entries give it (templates take the same list). */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean | null };
}

/** What the chat template is handed besides the messages. */
export interface ChatTemplateOptions {
  tools?: readonly ToolDefinition[];
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
  /** How cold experts are handled; absent: every expert must be resident (the CLI's all-local model). */
  moe?: MoeOptions;
  /** Log probabilities of every generated token with this many alternatives (0-20); absent: none computed. */
  logprobs?: number;
  /** Also score the prompt: the first chunk carries every prompt token's log probability (OpenAI's `echo`). */
  promptLogprobs?: boolean;
  /** Constrained decoding (structured output, forced tool calls): masks each step's logits; absent: free text. */
  constraint?: TokenConstraint;
}

/**
 * A grammar as the decode loop sees it (src/grammar builds one from a JSON schema): which tokens may come next,
 * and the token that came. The loop never asks which grammar engine is behind it.
 */
export interface TokenConstraint {
  /** Sets the logit of every token the grammar forbids now to -Infinity. */
  mask(logits: Float32Array): Promise<void>;
  /** The sampled token; false if the grammar refuses it (a bug: the mask allowed it). */
  accept(token: number): boolean;
  /** True once the grammar is complete and has accepted a stop token. */
  readonly done: boolean;
  /** Frees the matcher (WASM memory) when the generation ends; idempotent. */
  release(): void;
}

/** One token's log probability under the model's raw distribution (before temperature, top-k/p and masks). */
export interface TokenLogprob {
  id: number;
  logprob: number;
  /** the most likely tokens at that position, most likely first (as many as asked for) */
  top: { id: number; logprob: number }[];
}

/** Cold-expert policies (design §4): exact on the backend, replaced by a hot expert, or left out. */
export type ColdPolicy = 'remote' | 'substitute' | 'drop';
export const COLD_POLICIES: readonly ColdPolicy[] = ['remote', 'substitute', 'drop'];
/** What a generation does once the backend fails it: a local policy, or fail the request (502/504). */
export type DegradedPolicy = 'substitute' | 'drop' | 'error';
export const DEGRADED_POLICIES: readonly DegradedPolicy[] = ['substitute', 'drop', 'error'];

/** Where the GPU backend is (plain data; the transport lives in src/remote). */
export interface BackendTarget {
  /** Base URL, e.g. http://127.0.0.1:8788 (with `replicas`: the first replica's, for messages) */
  url: string;
  token: string;
  /** Longest wait for one reply (and for the connection) before the generation degrades. */
  timeoutMs: number;
  /**
   * Expert parallelism (BACKENDS): each replica serves a block of layers x experts, and every call goes to
   * the replica that owns its (layer, expert). Absent: `url` serves every expert.
   */
  replicas?: readonly BackendReplica[];
}

/** One replica of an expert-parallel backend tier: the experts it serves in each of its layers (null: all). */
export interface BackendReplica {
  readonly url: string;
  readonly layers: IdRange | null;
  readonly experts: IdRange | null;
}

export interface MoeOptions {
  policy: ColdPolicy;
  degradedPolicy: DegradedPolicy;
  backend: BackendTarget | null;
  /** Tier one: the hot-set profile the request names (`moe.profile`); absent: the skill map picks one. */
  profile?: string;
  /**
   * REMOTE_PREFILL_MIN_TOKENS: prompts of at least this many tokens are prefilled by the backend (its prefill call)
   * and their KV cache streamed here; shorter ones, and every prompt when 0 or absent, are prefilled here.
   */
  remotePrefillMinTokens?: number;
  /**
   * Self-speculative decoding (SPECULATIVE_MAX_TOKENS, SPECULATIVE_DRAFT_POLICY; `moe.speculative: false` turns it
   * off for a request): the resident experts draft up to this many tokens, the exact split verifies them in one pass.
   * 0 or absent: off.
   */
  speculativeMaxTokens?: number;
  /** How the draft treats cold picks: dropped, or replaced by the best-scoring resident expert. */
  speculativeDraftPolicy?: 'drop' | 'substitute';
}

/** Why a generation stopped using the backend (x-moe-degraded, usage.moe.degraded, metrics). */
export type DegradedReason = 'no_backend' | 'unavailable' | 'timeout' | 'protocol' | 'unauthorized' | 'backend_error';

/** usage.moe: where this generation's routed (token, expert) pairs were computed. */
export interface MoeUsage {
  /** Router picks served by a resident (hot) expert. */
  hot_hits: number;
  /** Router picks served by an expert-shard Worker (SHARD_LAYOUT): at the edge, exact, not on the GPU. */
  shard_hits: number;
  /** Router picks of cold experts (computed remotely, or substituted / dropped by the policy). */
  cold_calls: number;
  /** Requests to the backend (one per layer and forward pass with a cold pick): the round trips paid. */
  remote_calls: number;
  /** Sum of round trips of the remote requests (send -> reply), ms. */
  remote_ms: number;
  /** Of that, time spent waiting after the hot experts were done: the part the overlap did not hide, ms. */
  remote_wait_ms: number;
  degraded: DegradedReason | null;
  policy: ColdPolicy;
  /** The hot-set profile this generation ran under (named, or picked by the skill map); absent without profiles. */
  profile?: string;
  /** Where the prompt was prefilled: here, or on the backend (its KV cache streamed here). */
  prefill: 'local' | 'remote';
  /** Bytes of the backend's KV stream received (0 when prefilled here). */
  prefill_kv_bytes: number;
  /** The remote prefill's time, request sent -> cache placed, ms (0 when prefilled here). */
  prefill_ms: number;
  /** Why a prompt meant for the backend was prefilled here after all (absent: it was not). */
  prefill_fallback?: DegradedReason;
  /** Self-speculative decoding: tokens drafted by the resident experts, how many the exact split accepted, in how many verification passes (all 0: it was off). */
  speculative_drafted: number;
  speculative_accepted: number;
  verification_passes: number;
}

/** One streamed piece of output: text that is final (never retracted by stop-sequence handling). */
export interface GenerateChunk {
  text: string;
  /** With `logprobs`: the tokens whose text is (or was held back and now is) released with this chunk. */
  logprobs?: TokenLogprob[];
  /** With `promptLogprobs`, on the first chunk only: every prompt token's, null for the first (nothing predicts it). */
  promptLogprobs?: (TokenLogprob | null)[];
}

export type FinishReason = 'stop' | 'length';

export interface GenerateResult {
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** Present when the model splits experts between here and a backend. */
  moe?: MoeUsage;
}

/** A running generation; `moe` (when present) is live: readable after any step, e.g. for a header. */
export type Generation = AsyncGenerator<GenerateChunk, GenerateResult, void> & { readonly moe?: MoeUsage };

/** The memory side of a model, for admission: its heap (one per loaded model) and what its weights occupy there now. */
export interface ModelMemory {
  /** identity of the heap the generation will allocate from */
  readonly heap: object;
  readonly arch: Architecture;
  /** bytes of weights resident now (trunk and hot experts of every live hot-set version) */
  readonly weightsBytes: number;
  /** the element type of every generation's KV cache (KV_CACHE_TYPE); absent: f32 */
  readonly kvCacheType?: KvCacheType;
}

/**
 * The one model interface: the Worker's ServedModel and the CLI's local model (src/engine/load.ts) both are
 * one. What only some models have is an optional capability, asked for by property, never by class.
 */
export interface TextModel {
  /** The model id clients pass as `model`. */
  readonly id: string;
  readonly contextLength: number;
  readonly defaults: { temperature: number; topP: number; maxTokens: number };
  /** Tokenise raw text (adds BOS when the model's tokenizer config says so). */
  encode(text: string): number[];
  /** Render messages with the model's chat template (generation prompt appended) and tokenise. */
  encodeChat(messages: ChatMessage[], opts?: ChatTemplateOptions): number[];
  /** The model's chat template source (tool-call parsers pick their format from it); absent: none. */
  readonly chatTemplate?: string | null;
  /** The manifest's tool-call format, when it names one (else the template's family decides). */
  readonly toolCallFormat?: 'hermes' | 'granite' | 'json';
  /**
   * Generate; yields text chunks as they become final and returns the summary. The request has passed
   * checkContext (src/engine/context.ts) where it was built: the routes and the CLI apply it once.
   */
  generate(req: GenerateRequest): Generation;
  /** What admission weighs a generation against (ISOLATE_MEMORY_MB); absent: generations are only counted. */
  readonly memory?: ModelMemory;
  /** The tokenizer's vocabulary (logprobs' token strings, grammars); absent: a model without a tokenizer. */
  readonly vocabulary?: Vocabulary;
}

/** Token ids as text and bytes, and the raw vocabulary a grammar engine compiles against. */
export interface Vocabulary {
  readonly size: number;
  /** the bytes token `id` stands for (special tokens: their text) */
  bytes(id: number): Uint8Array;
  /** true for special tokens (BOS, EOS, chat markers) */
  special(id: number): boolean;
  /** every id's string as tokenizer.json spells it, and how those strings encode bytes (xgrammar's vocab types) */
  encoded(): { tokens: string[]; type: 'BYTE_LEVEL' | 'BYTE_FALLBACK' | 'RAW' };
  readonly eosTokenIds: readonly number[];
}

// Admission of generations into an isolate, decided before anything is allocated: at most
// MAX_CONCURRENT_GENERATIONS at once (429), and the model's weights plus every running generation's KV cache
// and scratch plus this one's within ISOLATE_MEMORY_MB (400 when the request could never fit, 503 while others
// hold the memory). A RangeError from memory.grow mid-generation is what this exists to prevent.
import type { Generation, ModelMemory } from '../engine/api';
import { PREFILL_CHUNK, sequenceScratchBytes } from '../engine/forward';
import { MoeError } from '../common/errors';
import type { Architecture } from '../format/manifest';
import { kvTensorBytes, type KvCacheType } from '../engine/kv-cache';
import { attentionKvScratchBound, attentionScratchBound } from '../kernels/attention-scratch';

const MIB = 1024 * 1024;
const ALIGN = 64; // src/kernels/heap.ts: blocks are cache-line aligned and carry a one-line header
const RETRY_AFTER_S = 1;

/** What one deployment allows (from wrangler.toml; null: no limit). */
export interface GenerationLimits {
  readonly maxConcurrentGenerations: number | null;
  readonly isolateMemoryBytes: number | null;
}

export interface GenerationShape {
  readonly promptTokens: number;
  readonly maxTokens: number;
  /** the request field the 400 names: max_tokens or max_completion_tokens */
  readonly maxTokensParam: string;
  readonly promptParam: string;
  /** `echo` scoring: the Sequence holds a prefill chunk's logits rows instead of one */
  readonly logitRows?: 'last' | 'all';
  /** bytes the generation holds outside the Sequence, e.g. a grammar matcher's (src/grammar) */
  readonly extraBytes?: number;
}

/** Released once when the generation ends, however it ends. */
export interface Ticket {
  release(): void;
}

/** 429 with Retry-After: the isolate already runs MAX_CONCURRENT_GENERATIONS generations. */
export class TooManyGenerationsError extends MoeError {
  readonly retryAfterSeconds = RETRY_AFTER_S;
  constructor(limit: number) {
    super(
      `This server is already running ${limit} generations (MAX_CONCURRENT_GENERATIONS=${limit}); retry after ${RETRY_AFTER_S} s`,
      { status: 429, code: 'too_many_concurrent_generations', type: 'rate_limit_error' },
    );
  }
}

/** 503 with Retry-After: this generation fits the memory budget, but not beside the ones running now. */
export class MemoryBusyError extends MoeError {
  readonly retryAfterSeconds = RETRY_AFTER_S;
  constructor(need: number, used: number, budget: number, running: number) {
    super(
      `Not enough memory for this generation right now: it needs ${mib(need)} MiB of KV cache and scratch, and ${mib(used)} of ` +
        `the ${mib(budget)} MiB budget (ISOLATE_MEMORY_MB) are taken by the model and ${running} running generation(s); retry after ${RETRY_AFTER_S} s`,
      { status: 503, code: 'isolate_memory_busy', type: 'server_error' },
    );
  }
}

/** 400: even alone, prompt + max_tokens need more KV cache than the budget leaves beside the weights. */
export class MemoryBudgetExceededError extends MoeError {
  constructor(s: GenerationShape, need: number, room: number, budget: number, fits: number) {
    const positions = s.promptTokens + s.maxTokens;
    const param = s.promptTokens >= fits ? s.promptParam : s.maxTokensParam;
    super(
      `This request needs ${mib(need)} MiB of KV cache and scratch for ${positions} tokens (${s.promptTokens} in the ${s.promptParam}, ` +
        `${s.maxTokens} in the completion), but this server's memory budget (ISOLATE_MEMORY_MB=${mib(budget)}) leaves ${mib(room)} MiB beside ` +
        `the model's weights: at most ${fits} tokens fit. Reduce ${param === s.promptParam ? `the length of the ${s.promptParam}` : param}.`,
      { status: 400, code: 'memory_budget_exceeded', type: 'invalid_request_error', param },
    );
  }
}

/** 500: the weights alone take the whole budget; no request can run until ISOLATE_MEMORY_MB or the hot set changes. */
export class WeightsOverBudgetError extends MoeError {
  constructor(weights: number, budget: number) {
    super(
      `The model's weights take ${mib(weights)} MiB, the whole memory budget ISOLATE_MEMORY_MB=${mib(budget)}: raise it or shrink the hot set`,
      { status: 500, code: 'invalid_config', type: 'server_error' },
    );
  }
}

/**
 * Upper bound of the heap bytes one generation holds for `positions` tokens: its Sequence (KV cache, and the
 * prefill-chunk activations and one logits row that sequenceScratch in src/engine/forward.ts allocates) plus the transient kernel scratch of one
 * forward call (activations quantized for a matmul, the FFN intermediates, attention scores, the expert gather
 * buffers, router scores). Scratch lives only inside one synchronous call, so it is counted per generation
 * although at most one generation's scratch is ever live: the bound errs on the safe side.
 */
export function generationBytes(a: Architecture, positions: number, kvType: KvCacheType = 'f32', logitRows: 'last' | 'all' = 'last'): number {
  const C = PREFILL_CHUNK;
  const H = a.hiddenSize;
  const qDim = a.numHeads * a.headDim;
  const f32 = (n: number) => block(n * 4);
  const sequence =
    2 * a.numLayers * block(kvTensorBytes(a, positions, kvType)) + // K and V per layer: (positions, kvDim) of kvType
    sequenceScratchBytes(a, logitRows, kvType, block); // a generation asks for the last row's logits only, unless it scores the prompt
  const widest = Math.max(H, qDim, a.expertFfnSize, a.sharedExpertFfnSize);
  // attention: an f32 cache's kernel takes a block of heads' scores; any other, a block of queries' scores, a query, V rows
  const attention = block(kvType === 'f32' ? attentionScratchBound(positions, a.numHeads) : attentionKvScratchBound(positions, a.headDim, a.numHeads / a.numKvHeads, C));
  const scratch = f32(C * widest) + 3 * f32(C * widest) + attention + 2 * f32(C * H) + f32(C * a.numExperts);
  return sequence + scratch;
}

/** The largest number of positions whose generationBytes fits in `room` (0 when none does). */
export function positionsThatFit(a: Architecture, room: number, kvType: KvCacheType = 'f32'): number {
  if (generationBytes(a, 1, kvType) > room) return 0;
  let lo = 1;
  let hi = 1;
  while (generationBytes(a, hi * 2, kvType) <= room && hi < 2 ** 30) hi *= 2;
  hi *= 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (generationBytes(a, mid, kvType) <= room) lo = mid;
    else hi = mid;
  }
  return lo;
}

export class Admission {
  private running = 0;
  private readonly reserved = new WeakMap<object, { bytes: number; count: number }>();

  /** Generations running in this isolate. */
  get active(): number {
    return this.running;
  }

  /** Admits one generation or throws the client-facing error; nothing is allocated until it returns. */
  admit(limits: GenerationLimits, shape: GenerationShape, memory: ModelMemory | null): Ticket {
    const max = limits.maxConcurrentGenerations;
    if (max !== null && this.running >= max) throw new TooManyGenerationsError(max);
    const budget = limits.isolateMemoryBytes;
    let bytes = 0;
    let slot: { bytes: number; count: number } | undefined;
    if (budget !== null && memory) {
      const a = memory.arch;
      const kvType = memory.kvCacheType ?? 'f32';
      bytes = generationBytes(a, shape.promptTokens + shape.maxTokens, kvType, shape.logitRows) + (shape.extraBytes ?? 0);
      const room = budget - memory.weightsBytes;
      if (room <= 0) throw new WeightsOverBudgetError(memory.weightsBytes, budget);
      if (bytes > room) throw new MemoryBudgetExceededError(shape, bytes, room, budget, positionsThatFit(a, room, kvType));
      slot = this.reserved.get(memory.heap);
      if (!slot) this.reserved.set(memory.heap, (slot = { bytes: 0, count: 0 }));
      if (slot.bytes + bytes > room) throw new MemoryBusyError(bytes, memory.weightsBytes + slot.bytes, budget, slot.count);
      slot.bytes += bytes;
      slot.count++;
    }
    this.running++;
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        this.running--;
        if (slot) {
          slot.bytes -= bytes;
          slot.count--;
        }
      },
    };
  }
}

/** The isolate's admission (module state lives as long as the isolate). */
export const admission = new Admission();

/**
 * `gen` with `release` called exactly once when it finishes: it returns, throws, or is closed with return(),
 * also when return() comes before anyone called next() (a stream cancelled before its first read). A plain
 * `async function*` wrapper cannot do that last part: its finally never runs if it never started.
 */
export function releasedWhenDone(gen: Generation, release: () => void): Generation {
  let released = false;
  const done = () => {
    if (!released) {
      released = true;
      release();
    }
  };
  const settle = async <T>(step: Promise<IteratorResult<T, unknown>>) => {
    try {
      const r = await step;
      if (r.done) done();
      return r;
    } catch (e) {
      done();
      throw e;
    }
  };
  const wrapped = {
    next: (...args: [] | [void]) => settle(gen.next(...args)),
    return: (value: never) => settle(gen.return(value)),
    throw: (e: unknown) => settle(gen.throw(e)),
    [Symbol.asyncIterator]() {
      return wrapped;
    },
    get moe() {
      return gen.moe;
    },
  };
  return wrapped as unknown as Generation;
}

function block(bytes: number): number {
  return Math.ceil(Math.max(bytes, 1) / ALIGN) * ALIGN + ALIGN;
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(bytes < 10 * MIB ? 2 : 0);
}

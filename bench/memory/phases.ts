// The memory benchmark's arithmetic: a phase's samples summarized (peak while it ran, steady state after it,
// deltas from before the load), and what the planner (tools/placement.ts) and admission (src/runtime/admission.ts)
// predict for the same model and generation lengths.
import type { Architecture, Manifest } from '../../src/format/manifest';
import type { KvCacheType } from '../../src/engine/kv-cache';
import { generationBytes } from '../../src/runtime/admission';
import { isolateBytes, type IsolateSample } from '../../tools/dev/isolate-memory';
import { headBytes, place } from '../../tools/placement';

const MiB = 2 ** 20;
const mib = (b: number) => Math.round((b / MiB) * 10) / 10;

/** One moment's figures in MiB: JS heap used, ArrayBuffer backing stores, WASM memory and its used bytes, their sum, workerd RSS delta. */
export interface Figures {
  jsUsed: number;
  jsBacking: number;
  wasmMemory: number;
  wasmHeapUsed: number;
  /** jsUsed + jsBacking + wasmMemory */
  isolate: number;
  /** workerd RSS minus its RSS before the model loaded */
  rssDelta: number;
}

export interface Phase {
  label: string;
  generations: { positions: number; status: number; promptTokens?: number; completionTokens?: number; ms: number }[];
  samples: number;
  failedSamples: number;
  durationMs: number;
  /** the largest value of each figure over the phase's samples (each its own maximum; isolate: the largest sum) */
  peak: Figures;
  /** one sample after the phase ended */
  after: Figures;
}

function figures(s: IsolateSample, before: IsolateSample): Figures {
  return {
    jsUsed: mib(s.jsUsedBytes),
    jsBacking: mib(s.jsBackingStoreBytes),
    wasmMemory: mib(s.wasmMemoryBytes),
    wasmHeapUsed: mib(s.wasmHeapUsedBytes),
    isolate: mib(isolateBytes(s)),
    rssDelta: mib(s.rssBytes - before.rssBytes),
  };
}

export function summarize(label: string, generations: Phase['generations'], run: { samples: IsolateSample[]; failed: number }, before: IsolateSample, after: IsolateSample): Phase {
  const all = [...run.samples, after].map((s) => figures(s, before));
  const peak = Object.fromEntries((Object.keys(all[0]) as (keyof Figures)[]).map((k) => [k, Math.max(...all.map((f) => f[k]))])) as unknown as Figures;
  return {
    label,
    generations,
    samples: run.samples.length,
    failedSamples: run.failed,
    durationMs: Math.round((run.samples.at(-1)?.atMs ?? 0) - (run.samples[0]?.atMs ?? 0)),
    peak,
    after: figures(after, before),
  };
}

/** What the planner predicts for one phase, in MiB: the WASM heap in use and the isolate (heap + runtime + tokenizer). */
export interface Prediction {
  label: string;
  heap: number;
  isolate: number;
  /** admission's bound of the generations' heap bytes (KV cache + scratch), which ISOLATE_MEMORY_MB is checked against */
  admissionGenerations: number;
}

export const predict = {
  /** The longest M such that two generations of M positions fit where one of `fitsOne` does (admission's accounting). */
  pairThatFits(a: Architecture, fitsOne: number, kv: KvCacheType): number {
    const room = generationBytes(a, fitsOne, kv);
    let m = 1;
    while (2 * generationBytes(a, m + 1, kv) <= room) m++;
    return 2 * generationBytes(a, m, kv) <= room ? m : 0;
  },

  /** `kv`: the Worker's KV_CACHE_TYPE, so the planner sizes the caches as the Worker allocates them. */
  placements(a: Architecture, manifest: Manifest, phases: readonly Phase[], kv: KvCacheType, headOnShard = false): Prediction[] {
    const tokenizer = manifest.tokenizer !== null;
    // with the head on a shard the front's heap holds the trunk less the embedding and output head
    const trunkOf = (p: ReturnType<typeof place>) => p.trunk.total - (headOnShard ? headBytes(p) : 0);
    return phases.map((ph) => {
      if (ph.generations.length === 0) {
        const p = place(a, manifest.quant, 0, { context: 1, tokenizer, kvCacheType: kv });
        return { label: `${ph.label} (planner's load peak: the trunk in the heap and one streamed chunk)`, heap: mib(trunkOf(p)), isolate: mib(p.loadPeak - (p.trunk.total - trunkOf(p))), admissionGenerations: 0 };
      }
      const ok = ph.generations.filter((g) => g.status === 200);
      const perGen = ok.map((g) => place(a, manifest.quant, 0, { context: g.positions, tokenizer, kvCacheType: kv }));
      const base = place(a, manifest.quant, 0, { context: 1, tokenizer, kvCacheType: kv });
      const heap = trunkOf(base) + perGen.reduce((s, p) => s + p.kvCache + p.scratch, 0);
      return {
        label: ph.label,
        heap: mib(heap),
        isolate: mib(heap + base.runtime + base.tokenizer),
        admissionGenerations: mib(ok.reduce((s, g) => s + generationBytes(a, g.positions, kv), 0)),
      };
    });
  },
};

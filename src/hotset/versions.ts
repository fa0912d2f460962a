// Hot-set versions of one model in one isolate: each version is a whole, read-only ModelWeights over the
// shared trunk. A new version is loaded beside the current one and swapped in atomically; generations
// hold a lease on the version they started with, and a retired version's experts go back to the heap
// when its last generation ends (experts kept by the new version are shared, not copied).
import { expertBytes, loadExpert, releaseExpert, withExperts, type ExpertWeights, type ModelWeights, type TrunkWeights } from '../engine/model';
import type { Manifest } from '../format/manifest';
import type { ObjectSource } from '../store/source';
import type { Kernels } from '../kernels/types';
import type { HotSet } from './resolve';

export interface HotVersion {
  /** hot-set.json's version (0: from HOT_EXPERTS) */
  readonly id: number;
  /** where it came from: 'env' (HOT_EXPERTS) or 'r2' (hot-set.json) */
  readonly source: 'env' | 'r2';
  readonly hotSet: HotSet;
  readonly weights: ModelWeights;
}

export interface Lease {
  readonly version: HotVersion;
  release(): void;
}

interface VersionState {
  version: HotVersion;
  active: number;
  retired: boolean;
}

export class HotWeights {
  private current: VersionState | null = null;
  /** "layer/expert" -> weights and how many live versions hold them */
  private readonly pool = new Map<string, { w: ExpertWeights; holders: number }>();
  private installing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly k: Kernels,
    private readonly source: ObjectSource,
    private readonly manifest: Manifest,
    readonly trunk: TrunkWeights,
  ) {}

  get version(): HotVersion {
    if (!this.current) throw new Error('no hot-set version installed');
    return this.current.version;
  }

  /** Versions still in memory (the current one plus retired ones that generations still use). */
  liveVersions = 0;

  /** The current version for one generation; release() when it ends (also when it fails or is cancelled). */
  acquire(): Lease {
    const s = this.current;
    if (!s) throw new Error('no hot-set version installed');
    s.active++;
    let done = false;
    return {
      version: s.version,
      release: () => {
        if (done) return;
        done = true;
        s.active--;
        if (s.retired && s.active === 0) this.dispose(s);
      },
    };
  }

  /** Load `hotSet` as a new version and make it current; one install at a time, in call order. */
  install(hotSet: HotSet, id: number, source: 'env' | 'r2'): Promise<HotVersion> {
    const next = this.installing.then(() => this.load(hotSet, id, source));
    this.installing = next.catch(() => {});
    return next;
  }

  private async load(hotSet: HotSet, id: number, source: 'env' | 'r2'): Promise<HotVersion> {
    const { numLayers, numExperts } = this.manifest.architecture;
    const taken: string[] = [];
    const rows: (ExpertWeights | undefined)[][] = [];
    try {
      for (let l = 0; l < numLayers; l++) {
        const row: (ExpertWeights | undefined)[] = new Array(numExperts).fill(undefined);
        for (const e of hotSet.layers[l] ?? []) {
          const key = `${l}/${e}`;
          let entry = this.pool.get(key);
          if (!entry) {
            entry = { w: await loadExpert(this.k, this.source, this.manifest, l, e), holders: 0 };
            this.pool.set(key, entry);
          }
          entry.holders++;
          taken.push(key);
          row[e] = entry.w;
        }
        rows.push(row);
      }
    } catch (e) {
      for (const key of taken) this.drop(key);
      throw e;
    }
    const version: HotVersion = Object.freeze({ id, source, hotSet, weights: withExperts(this.trunk, rows) });
    const old = this.current;
    this.current = { version, active: 0, retired: false };
    this.liveVersions++;
    if (old) {
      old.retired = true;
      if (old.active === 0) this.dispose(old);
    }
    return version;
  }

  private dispose(s: VersionState): void {
    s.version.hotSet.layers.forEach((row, l) => row.forEach((e) => this.drop(`${l}/${e}`)));
    this.liveVersions--;
  }

  private drop(key: string): void {
    const entry = this.pool.get(key);
    if (!entry) return;
    if (--entry.holders > 0) return;
    this.pool.delete(key);
    releaseExpert(this.k, entry.w);
  }

  /** Heap bytes of the weights resident now: the trunk and every expert of every live version (and of an install under way). */
  get bytes(): number {
    let total = this.trunk.bytes;
    for (const { w } of this.pool.values()) total += expertBytes(w);
    return total;
  }

  /** Experts resident in the heap right now, across live versions. */
  get residentExperts(): number {
    return this.pool.size;
  }
}

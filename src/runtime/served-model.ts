// The Worker's TextModel: the trunk and hot experts resident here, the experts of its expert-shard Workers there
// (SHARD_LAYOUT; maybe the head too), cold experts by policy (the GPU backend over one WebSocket per generation, or
// substitute / drop), the hot set re-read from hot-set.json and swapped under
// running generations, each generation's routing counted for the isolate (per tier-one profile when there are
// some). It gives the routes their memory (admission) and hot-set (admin) capabilities. Runtime-agnostic (no
// WASM imports): the Worker builds it over R2, Node tests and benchmarks over a folder.
import type { BackendTarget, GenerateChunk, GenerateRequest, GenerateResult, Generation, ModelMemory, MoeOptions, MoeUsage, TextModel } from '../engine/api';
import { generateWith, loadCodec, textModelFields, type EngineModel } from '../engine/load';
import { loadTrunk, type ModelWeights } from '../engine/model';
import { checkKvCacheType, type KvCacheType } from '../engine/kv-cache';
import type { TextCodec } from '../engine/tokenizer';
import { InvalidRequestError, ModelNotUploadedError, ObjectNotFoundError } from '../common/errors';
import { objectNames, tensorNames, type Manifest } from '../format/manifest';
import { readTaggedManifest, type ObjectSource, type TaggedManifest } from '../store/source';
import { planAutoHotSet } from '../planning/auto-hot-set';
import { resolveProfiled, tierOf, type ProfiledHotSet, type TierOne } from '../hotset/profiles';
import type { HotSetControl } from '../hotset/control';
import { HotSetError, parseHotSetPut, type HotSetBody, type HotSetSpec } from '../hotset/spec';
import { resolveHotSet, type HotSet } from '../hotset/resolve';
import type { HotSetStore, StoredHotSet } from '../hotset/store';
import { HotWeights, type HotVersion } from '../hotset/versions';
import type { Kernels } from '../kernels/types';
import { activationDTypeFor } from '../protocol/activations';
import type { FetchBinding } from '../remote/connect';
import { connectBackend } from '../remote/sharded-session';
import { connectShards, type ShardTier } from '../remote/shard-tier';
import { NO_SHARD } from '../shard/layout';
import { readShardLayout } from '../shard/read-layout';
import { newMoeUsage, SplitExperts, type SplitOptions } from '../remote/split-experts';
import { promptPrefill } from '../remote/prompt-prefill';
import type { SpeculationOptions } from '../engine/speculative-decode';
import type { RoutingTally } from '../routing/tally';
import { watchRouting } from './generation-routing';

export interface GenerationExperts {
  readonly version: HotVersion;
  readonly weights: ModelWeights;
  readonly experts: SplitExperts;
  readonly usage: MoeUsage;
  /** Self-speculative decoding's draft (the resident experts alone), when it can pay: absent otherwise. */
  readonly speculation?: SpeculationOptions;
  end(): void;
}

export interface ServedModelOptions {
  /** The id clients use; defaults to the manifest's name. */
  id?: string;
  /** The deployment's hot set (HOT_EXPERTS) when no hot-set.json is stored. */
  hotExperts: HotSetSpec;
  /** HOT_BUDGET_MB in bytes; null: no limit. */
  budgetBytes: number | null;
  /** Where hot-set.json lives (R2); null: the hot set never changes. */
  store?: HotSetStore | null;
  /** Look for a new hot-set.json at most this often (on requests). */
  refreshMs?: number;
  /** Called once per generation when it ends, however it ends (metrics). */
  onGenerationEnd?: (usage: MoeUsage, result: GenerateResult | null) => void;
  /** Where each generation's routing counts go (the isolate's statistics); absent: not counted. */
  routing?: RoutingTally;
  /** KV_CACHE_TYPE: the element type of every generation's KV cache (absent: f32) */
  kvCacheType?: KvCacheType;
  /** Expert-shard Workers (SHARD_LAYOUT): the layout object's name and each shard's binding; absent: none. */
  shards?: ShardBindings | null;
  log?: (line: string) => void;
}

export interface ShardBindings {
  /** shard-layout.json's object name beside the model */
  readonly layoutName: string;
  /** the service binding named in the layout (ConfigError when the Worker has none by that name) */
  binding(name: string): FetchBinding;
  readonly timeoutMs: number;
}

/** Without `moe` in the request: exact or nothing (every cold pick fails the request with 502). */
const STRICT: MoeOptions = { policy: 'remote', degradedPolicy: 'error', backend: null };

export class ServedModel implements EngineModel, HotSetControl {
  readonly id: string;
  readonly contextLength: number;
  readonly defaults: TextModel['defaults'];
  readonly encode: TextModel['encode'];
  readonly encodeChat: TextModel['encodeChat'];
  readonly vocabulary: TextModel['vocabulary'];
  readonly chatTemplate: TextModel['chatTemplate'];
  readonly toolCallFormat: TextModel['toolCallFormat'];
  private etag: string | null = null;
  private newestSeen = 0;
  private lastCheck = 0;
  private refreshing: Promise<void> | null = null;
  /** HOT_EXPERTS resolved (with `auto`, planned from routing-stats.json): what applies when no hot-set.json is stored */
  private envHotSet: HotSet | null = null;
  /** The expert-shard Workers and the layout they were planned with; null: none. */
  private shardTier: ShardTier | null = null;

  private constructor(
    readonly manifest: Manifest,
    readonly kernels: Kernels,
    readonly codec: TextCodec | null,
    /** First 8 bytes of SHA-256(manifest.json): the backend refuses calls for another model. */
    readonly modelTag: Uint8Array,
    readonly hot: HotWeights,
    private readonly opts: ServedModelOptions,
  ) {
    const f = textModelFields(manifest, codec, opts.id);
    this.id = f.id;
    this.contextLength = f.contextLength;
    this.defaults = f.defaults;
    this.encode = f.encode;
    this.encodeChat = f.encodeChat;
    this.vocabulary = f.vocabulary;
    this.chatTemplate = f.chatTemplate;
    this.toolCallFormat = f.toolCallFormat;
  }

  static async load(source: ObjectSource, kernels: Kernels, opts: ServedModelOptions): Promise<ServedModel> {
    const { manifest, tag } = await readServedManifest(source, opts.id);
    checkKvCacheType(manifest.architecture, opts.kvCacheType ?? 'f32');
    const budget = opts.budgetBytes;
    // validate the deployment's hot set before reading megabytes of weights
    let envHotSet: HotSet = resolveHotSet(opts.hotExperts, manifest, budget);
    if (opts.hotExperts.kind === 'auto') envHotSet = (await planAutoHotSet(source, manifest, budget, opts.log ?? console.warn)) ?? envHotSet;
    const stored = opts.store ? await readStored(opts.store, opts.log) : null;
    const shardTier = opts.shards ? await loadShardTier(source, manifest, opts.shards) : null;
    const codec = manifest.tokenizer ? await loadCodec(source, manifest) : null;
    // with the head on a shard the front never holds the embedding / output head (~30 MiB of granite's heap)
    const trunk = await loadTrunk(kernels, source, manifest, { head: (shardTier?.layout.headShard ?? null) === null });
    const model = new ServedModel(manifest, kernels, codec, tag, new HotWeights(kernels, source, manifest, trunk), opts);
    model.lastCheck = Date.now();
    model.envHotSet = envHotSet;
    model.shardTier = shardTier;
    if (stored) {
      try {
        await model.applyStored(stored);
        return model;
      } catch (e) {
        model.warn(`stored hot set ignored, using HOT_EXPERTS: ${(e as Error).message}`);
      }
    }
    await model.hot.install(envHotSet, 0, 'env');
    return model;
  }

  /** The current version's weights (tools and tests; generations take a lease instead). */
  get weights(): ModelWeights {
    return this.hot.version.weights;
  }

  get hotVersion(): HotVersion {
    return this.hot.version;
  }

  /** Admission's view: the kernel heap and what the trunk and every live hot-set version hold in it now. */
  get memory(): ModelMemory {
    return { heap: this.kernels.heap, arch: this.manifest.architecture, weightsBytes: this.hot.bytes, kvCacheType: this.kvCacheType };
  }

  /** The admin routes' handle on the hot set: this model itself. */
  get hotSet(): HotSetControl {
    return this;
  }

  /** Validates a hot set for this model and the deployment's budget (HotSetError: 400). */
  resolveHotSet(spec: HotSetSpec): HotSet {
    return resolveHotSet(spec, this.manifest, this.opts.budgetBytes);
  }

  /** Validates a PUT /admin/hot-set body, profiles included: their union must fit the budget (HotSetError: 400). */
  resolveHotSetBody(body: HotSetBody): ProfiledHotSet {
    if (body.model !== null && body.model !== this.manifest.name) throw new HotSetError(`the hot set was planned for model ${body.model}, not ${this.manifest.name}`, 'model');
    return resolveProfiled(body, this.manifest, this.opts.budgetBytes);
  }

  /** The current hot set's profiles and skill map (null: it has none). */
  get tier(): TierOne | null {
    return tierOf(this.hot.version.hotSet);
  }

  /** This isolate's routing statistics of this model (null when not counted). */
  get routing(): RoutingTally | null {
    return this.opts.routing ?? null;
  }

  get kvCacheType(): KvCacheType {
    return this.opts.kvCacheType ?? 'f32';
  }

  get budgetBytes(): number | null {
    return this.opts.budgetBytes;
  }

  generate(req: GenerateRequest): Generation {
    const moe = req.moe ?? STRICT;
    if (moe.profile !== undefined) this.checkProfile(moe.profile);
    const usage = newMoeUsage(moe.policy);
    return Object.assign(this.run(req, moe, usage), { moe: usage });
  }

  private async *run(req: GenerateRequest, moe: MoeOptions, usage: MoeUsage): AsyncGenerator<GenerateChunk, GenerateResult, void> {
    let result: GenerateResult | null = null;
    try {
      await this.refreshIfDue();
      const g = this.beginExperts(moe, usage);
      const tier = tierOf(g.version.hotSet);
      const watch = watchRouting(g.experts, {
        model: this.manifest.name,
        arch: this.manifest.architecture,
        tier,
        // a name checked against an earlier version may be gone from this one: then the skill map picks
        ...(moe.profile !== undefined && tier?.profiles.has(moe.profile) ? { requested: moe.profile } : {}),
        promptTokens: req.promptTokens.length,
        usage,
        tally: this.opts.routing ?? null,
      });
      try {
        const remote = (moe.remotePrefillMinTokens ?? 0) > 0 ? prefillTarget(moe.backend) : null;
        const prefill = remote
          ? promptPrefill({ kernels: this.kernels, experts: watch.experts, backend: remote, modelTag: this.modelTag, minTokens: moe.remotePrefillMinTokens!, usage })
          : undefined;
        result = yield* generateWith(this, g.weights, watch.experts, req, { prefill, speculation: g.speculation });
        return { ...result, moe: { ...usage } };
      } finally {
        watch.end();
        g.end();
      }
    } finally {
      this.opts.onGenerationEnd?.(usage, result);
    }
  }

  /**
   * What one generation computes with: a lease on the current hot-set version and the split executor over
   * it (with its backend session when cold experts go remote). `end()` closes the session and the lease.
   * generate() uses it; scoring tests and benchmarks drive forward() with it directly.
   */
  beginExperts(moe: MoeOptions, usage: MoeUsage = newMoeUsage(moe.policy), tuning: Pick<SplitOptions, 'serialize'> = {}): GenerationExperts {
    const lease = this.hot.acquire();
    const v = lease.version;
    const a = this.manifest.architecture;
    const layout = { numLayers: a.numLayers, numExperts: a.numExperts, hot: v.hotSet.layers };
    const allHot = v.hotSet.count === a.numLayers * a.numExperts;
    const needsShards = this.shardTier && (this.shardTier.layout.headShard !== null || !allHot);
    const shards = needsShards ? connectShards(this.shardTier!, this.modelTag, layout, this.kernels, a) : null;
    const shardOwned = (l: number, e: number) => this.shardTier !== null && this.shardTier.layout.owner[l * a.numExperts + e] !== NO_SHARD;
    const needsBackend = moe.policy === 'remote' && moe.backend !== null && !allHot && !coveredBy(layout, shardOwned);
    const remote = needsBackend ? connectBackend(moe.backend!, this.modelTag, layout) : null;
    const experts = new SplitExperts({
      kernels: this.kernels,
      weights: v.weights,
      policy: moe.policy,
      degradedPolicy: moe.degradedPolicy,
      remote,
      shards,
      actDType: activationDTypeFor(this.manifest.tensors[tensorNames.expertGate(0, 0)]!.dtype),
      usage,
      ...tuning,
    });
    // speculation pays only when cold picks cost round trips: a backend session, and a head here (a head shard would
    // cost a round trip per drafted token)
    const speculate = remote !== null && (moe.speculativeMaxTokens ?? 0) > 0 && !experts.head;
    const draftPolicy = moe.speculativeDraftPolicy ?? 'substitute';
    const draftUsage = newMoeUsage(draftPolicy);
    const speculation: SpeculationOptions | undefined = speculate
      ? {
          draft: new SplitExperts({ kernels: this.kernels, weights: v.weights, policy: draftPolicy, degradedPolicy: draftPolicy, remote: null, shards: null, actDType: 'f32', usage: draftUsage }),
          maxTokens: moe.speculativeMaxTokens!,
          stats: usage,
          worthwhile: () => usage.degraded === null, // once the backend failed, the split computes locally too
          approximations: () => draftUsage.cold_calls, // a cold pick is the only thing the draft computes differently
        }
      : undefined;
    return {
      version: v,
      weights: v.weights,
      experts,
      usage,
      speculation,
      end: () => {
        remote?.close();
        shards?.close();
        lease.release();
      },
    };
  }

  /** Look for a new hot-set.json when the last look is older than refreshMs; never fails a request. */
  refreshIfDue(force = false): Promise<void> {
    const store = this.opts.store;
    if (!store) return Promise.resolve();
    if (this.refreshing) return this.refreshing;
    if (!force && Date.now() - this.lastCheck < (this.opts.refreshMs ?? 2000)) return Promise.resolve();
    this.lastCheck = Date.now();
    this.refreshing = this.refresh(store)
      .catch((e) => this.warn(`hot-set refresh failed, keeping version ${this.hot.version.id}: ${(e as Error)?.message ?? e}`))
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private async refresh(store: HotSetStore): Promise<void> {
    const etag = await store.etag();
    if (etag === this.etag) return;
    if (etag === null) {
      // hot-set.json was deleted: back to HOT_EXPERTS
      this.etag = null;
      await this.hot.install(this.envHotSet ?? resolveHotSet(this.opts.hotExperts, this.manifest, this.opts.budgetBytes), 0, 'env');
      return;
    }
    const stored = await store.read();
    if (stored) await this.applyStored(stored);
  }

  /** Install a stored hot set (from R2, or just written by PUT /admin/hot-set) unless a newer one was seen. */
  async applyStored(stored: StoredHotSet): Promise<HotVersion> {
    const { doc } = stored;
    if (doc.model !== this.manifest.name) throw new HotSetError(`hot-set.json is for model ${doc.model}, not ${this.manifest.name}`);
    if (doc.version <= this.newestSeen) return this.hot.version;
    const hotSet = resolveProfiled(parseHotSetPut(doc), this.manifest, this.opts.budgetBytes);
    const before = this.newestSeen;
    this.newestSeen = doc.version; // before the await: an older read finishing later must not win
    try {
      const v = await this.hot.install(hotSet, doc.version, 'r2');
      this.etag = stored.etag;
      return v;
    } catch (e) {
      if (this.newestSeen === doc.version) this.newestSeen = before;
      throw e;
    }
  }

  /** `moe.profile` names one of the hot set's profiles (400 otherwise); without profiles it is ignored. */
  private checkProfile(name: string): void {
    const tier = this.tier;
    if (!tier || tier.profiles.has(name)) return;
    const names = [...tier.profiles.keys()].sort();
    const shown = name.length > 64 ? `${name.slice(0, 64)}...` : name;
    throw new InvalidRequestError(`Unknown profile ${JSON.stringify(shown)}: this model's hot set has the profiles ${names.map((n) => `'${n}'`).join(', ')}`, 'moe.profile', 'unknown_profile');
  }

  private warn(line: string): void {
    (this.opts.log ?? console.warn)(line);
  }
}

/**
 * The backend that prefills: BACKEND_URL's, or with BACKENDS the first replica that holds every layer and expert
 * (only such a replica has the whole model; the others refuse the call). null: none can.
 */
function prefillTarget(b: BackendTarget | null): BackendTarget | null {
  if (!b || !b.replicas) return b;
  const whole = b.replicas.find((r) => r.layers === null && r.experts === null);
  return whole ? { ...b, url: whole.url } : null;
}

/** True when every expert is hot or `elsewhere` says it is served at the edge (no backend call can happen). */
function coveredBy(layout: { numLayers: number; numExperts: number; hot: readonly (readonly number[])[] }, elsewhere: (l: number, e: number) => boolean): boolean {
  for (let l = 0; l < layout.numLayers; l++) {
    const hot = new Set(layout.hot[l] ?? []);
    for (let e = 0; e < layout.numExperts; e++) if (!hot.has(e) && !elsewhere(l, e)) return false;
  }
  return true;
}

/** shard-layout.json checked against the model, and a binding for every shard in it (before any weight is read). */
async function loadShardTier(source: ObjectSource, manifest: Manifest, sb: ShardBindings): Promise<ShardTier> {
  const layout = await readShardLayout(source, sb.layoutName, manifest);
  return { layout, bindings: layout.doc.shards.map((s) => sb.binding(s.binding)), timeoutMs: sb.timeoutMs };
}

/** manifest.json, or ModelNotUploadedError when it is absent (every other object is checked against it). */
async function readServedManifest(source: ObjectSource, id: string | undefined): Promise<TaggedManifest> {
  try {
    return await readTaggedManifest(source);
  } catch (e) {
    if (e instanceof ObjectNotFoundError && e.object === objectNames.manifest) throw new ModelNotUploadedError(id ?? 'default', source.describe());
    throw e;
  }
}

async function readStored(store: HotSetStore, log?: (l: string) => void): Promise<StoredHotSet | null> {
  try {
    return await store.read();
  } catch (e) {
    (log ?? console.warn)(`stored hot set ignored: ${(e as Error).message}`);
    return null;
  }
}

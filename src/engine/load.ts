// The models this engine computes in process: EngineModel, what the CLI's LocalModel and the Worker's ServedModel
// share (id, defaults, tokenizer, the generation loop), and LocalModel itself, every expert read into the heap.
import { expertEntries, parseManifest, type Manifest } from '../format/manifest';
import { readManifest, readVerified, type ObjectSource } from '../store/source';
import type { Kernels } from '../kernels/types';
import type { ChatMessage, ChatTemplateOptions, GenerateRequest, GenerateChunk, GenerateResult, TextModel } from './api';
import { LocalExperts, type ExpertExecutor } from './experts';
import { generateTokens, type GenerationContext } from './generate';
import { loadWeights, type ExpertSelection, type ModelWeights } from './model';
import { HfTextCodec, type TextCodec } from './tokenizer';
import { checkKvCacheType, type KvCacheType } from './kv-cache';
import { plannedBytes, reserveHeap, trunkEntries } from './weights';

/** A TextModel computed in this process, whichever experts it keeps: the CLI's LocalModel and the Worker's ServedModel. */
export interface EngineModel extends TextModel {
  readonly manifest: Manifest;
  readonly kernels: Kernels;
  readonly codec: TextCodec | null;
  /** The weights resident now (a ServedModel's generations each hold a lease on theirs). */
  readonly weights: ModelWeights;
  /** The element type of every generation's KV cache (absent: f32). */
  readonly kvCacheType?: KvCacheType;
}

/** The CLI's model: every expert resident and computed by one LocalExperts, which tools drive prefill() and forward() with. */
export interface LocalModel extends EngineModel {
  readonly expertExecutor: ExpertExecutor;
}

export interface LoadOptions {
  /** The id clients use; defaults to the manifest's name. */
  id?: string;
  experts?: ExpertSelection;
  /** KV cache element type of its generations (default f32: the exact reference) */
  kvCacheType?: KvCacheType;
}

/** The TextModel fields that follow from the manifest and its tokenizer. */
export function textModelFields(manifest: Manifest, codec: TextCodec | null, id?: string): Pick<TextModel, 'id' | 'contextLength' | 'defaults' | 'encode' | 'encodeChat' | 'vocabulary' | 'chatTemplate' | 'toolCallFormat'> {
  const g = manifest.generation;
  const needCodec = (): TextCodec => {
    if (!codec) throw new Error(`model ${manifest.name} has no tokenizer: feed token ids`);
    return codec;
  };
  return {
    id: id ?? manifest.name,
    contextLength: manifest.architecture.contextLength,
    defaults: { temperature: g.temperature, topP: g.topP, maxTokens: g.maxTokens },
    encode: (text: string) => needCodec().encode(text),
    encodeChat: (messages: ChatMessage[], opts?: ChatTemplateOptions) => needCodec().encodeChat(messages, opts),
    chatTemplate: manifest.chatTemplate,
    ...(g.toolCallFormat ? { toolCallFormat: g.toolCallFormat } : {}),
    ...(codec?.vocabulary ? { vocabulary: { ...codec.vocabulary, eosTokenIds: g.eosTokenIds } } : {}),
  };
}

/** One generation of `model` computing with `weights` and `experts` (its own, or a ServedModel's lease). */
export function generateWith(
  model: Pick<EngineModel, 'manifest' | 'kernels' | 'codec' | 'kvCacheType'>,
  weights: ModelWeights,
  experts: ExpertExecutor,
  req: GenerateRequest,
  how: Pick<GenerationContext, 'prefill' | 'speculation'> = {},
): AsyncGenerator<GenerateChunk, GenerateResult, void> {
  return generateTokens({ kernels: model.kernels, weights, experts, codec: model.codec, eosTokenIds: model.manifest.generation.eosTokenIds, kvCacheType: model.kvCacheType, ...how }, req);
}

export async function loadTextModel(source: ObjectSource, kernels: Kernels, opts: LoadOptions = {}): Promise<LocalModel> {
  const manifest = await readManifest(source);
  return loadFromManifest(source, manifest, kernels, opts);
}

export async function loadFromManifest(source: ObjectSource, manifest: Manifest, kernels: Kernels, opts: LoadOptions = {}): Promise<LocalModel> {
  parseManifest(manifest); // re-validate when handed a manifest from elsewhere
  const codec = manifest.tokenizer ? await loadCodec(source, manifest) : null;
  const kvCacheType = opts.kvCacheType ?? 'f32';
  checkKvCacheType(manifest.architecture, kvCacheType); // before megabytes of weights are read
  reserveHeap(kernels, plannedWeightBytes(manifest, opts.experts ?? 'all'));
  const weights = await loadWeights(kernels, source, manifest, opts.experts ?? 'all');
  const experts = new LocalExperts(kernels, weights);
  const model: LocalModel = {
    ...textModelFields(manifest, codec, opts.id),
    manifest,
    weights,
    kernels,
    codec,
    kvCacheType,
    expertExecutor: experts,
    generate: (req) => generateWith(model, weights, experts, req),
  };
  return model;
}

/** Heap bytes that loadWeights surely allocates: the whole trunk and the chosen experts' matrices (reserveHeap's lower bound). */
export function plannedWeightBytes(manifest: Manifest, experts: ExpertSelection): number {
  return plannedBytes(manifest, function* () {
    yield* trunkEntries(manifest, { head: true, layers: true });
    const { numLayers, numExperts } = manifest.architecture;
    for (let l = 0; l < numLayers; l++) {
      for (const e of experts === 'all' ? Array.from({ length: numExperts }, (_, i) => i) : (experts.get(l) ?? [])) {
        const { gate, up, down } = expertEntries(manifest, l, e);
        yield gate;
        yield up;
        yield down;
      }
    }
  });
}

export async function loadCodec(source: ObjectSource, manifest: Manifest): Promise<TextCodec> {
  const files = manifest.tokenizer!;
  const text = async (name: string) => JSON.parse(new TextDecoder().decode(await readVerified(source, manifest, name)));
  const g = manifest.generation;
  return new HfTextCodec({ json: await text(files.json), config: await text(files.config) }, manifest.chatTemplate, { id: g.bosTokenId, add: g.addBos });
}

// Builds a TextModel with every expert local (CLI, tools, benchmarks, tests) from a model prefix: manifest, verified
// weights in the kernel heap, tokenizer, chat template. The Worker's ServedModel loads through the same loadCodec
// and model.ts loaders (trunk, experts by hot set) and runs the same generate loop.
import { parseManifest, type Manifest } from '../format/manifest';
import { readManifest, readVerified, type ObjectSource } from '../store/source';
import type { Kernels } from '../kernels/types';
import type { ChatMessage, Generation, GenerateRequest, TextModel } from './api';
import { LocalExperts, type ExpertExecutor } from './experts';
import { checkContext, generateTokens } from './generate';
import { loadWeights, type ExpertSelection, type ModelWeights } from './model';
import { HfTextCodec, type TextCodec } from './tokenizer';

export interface LoadOptions {
  /** The id clients use; defaults to the manifest's name. */
  id?: string;
  experts?: ExpertSelection;
}

export interface LoadedModel extends TextModel {
  readonly manifest: Manifest;
  readonly weights: ModelWeights;
  readonly kernels: Kernels;
  readonly codec: TextCodec | null;
  readonly expertExecutor: ExpertExecutor;
}

export async function loadTextModel(source: ObjectSource, kernels: Kernels, opts: LoadOptions = {}): Promise<LoadedModel> {
  const manifest = await readManifest(source);
  return loadFromManifest(source, manifest, kernels, opts);
}

export async function loadFromManifest(source: ObjectSource, manifest: Manifest, kernels: Kernels, opts: LoadOptions = {}): Promise<LoadedModel> {
  parseManifest(manifest); // re-validate when handed a manifest from elsewhere
  const codec = manifest.tokenizer ? await loadCodec(source, manifest) : null;
  const weights = await loadWeights(kernels, source, manifest, opts.experts ?? 'all');
  const experts = new LocalExperts(kernels, weights);
  const a = manifest.architecture;
  const g = manifest.generation;
  const needCodec = (): TextCodec => {
    if (!codec) throw new Error(`model ${manifest.name} has no tokenizer: feed token ids`);
    return codec;
  };
  return {
    id: opts.id ?? manifest.name,
    contextLength: a.contextLength,
    defaults: { temperature: g.temperature, topP: g.topP, maxTokens: g.maxTokens },
    manifest,
    weights,
    kernels,
    codec,
    expertExecutor: experts,
    encode: (text: string) => needCodec().encode(text),
    encodeChat: (messages: ChatMessage[]) => needCodec().encodeChat(messages),
    generate(req: GenerateRequest): Generation {
      checkContext(a.contextLength, req.promptTokens.length, req.maxTokens); // eager: errors before any byte is sent
      return generateTokens({ kernels, weights, experts, codec: codec ?? { decode: () => '' }, eosTokenIds: g.eosTokenIds }, req);
    },
  };
}

export async function loadCodec(source: ObjectSource, manifest: Manifest): Promise<TextCodec> {
  const files = manifest.tokenizer!;
  const text = async (name: string) => JSON.parse(new TextDecoder().decode(await readVerified(source, manifest, name)));
  const g = manifest.generation;
  return new HfTextCodec({ json: await text(files.json), config: await text(files.config) }, manifest.chatTemplate, { id: g.bosTokenId, add: g.addBos });
}

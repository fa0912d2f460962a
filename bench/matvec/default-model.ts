// Node only: the default model's expert dims, read from models/default/manifest.json (the 64x64 placeholder
// dims when the manifest is absent), so the benchmark follows whatever model is embedded.
import { readFile } from 'node:fs/promises';
import { parseManifest, tensorNames } from '../../src/format/manifest';
import { DEFAULT_PLACEHOLDER, type ExpertDims } from './cases';

const MANIFEST = new URL('../../models/default/manifest.json', import.meta.url);

export async function defaultModelDims(): Promise<ExpertDims & { source: string }> {
  let text: string;
  try {
    text = await readFile(MANIFEST, 'utf8');
  } catch {
    return { ...DEFAULT_PLACEHOLDER, source: 'placeholder 64x64 (models/default/manifest.json absent)' };
  }
  const m = parseManifest(JSON.parse(text));
  // gate (I, H) and down (H, I) of expert 0 of layer 0: every expert of the model has these shapes
  const gate = m.tensors[tensorNames.expertGate(0, 0)]?.shape;
  const [inter, hidden] = gate?.length === 2 ? gate : [m.architecture.expertFfnSize, m.architecture.hiddenSize];
  return { model: 'default', hidden, intermediate: inter, source: `models/default/manifest.json (${m.name}, experts ${m.quant.experts})` };
}

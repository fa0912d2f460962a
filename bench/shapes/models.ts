// The models of a bench:shapes run: each folder checked (a missing granite-shaped one names the command that makes
// it) and exported once to GGUF for llama.cpp and wllama, cached under .cache/bench-shapes/ by the manifest's digest.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseManifest, type Manifest } from '../../src/format/manifest';
import { exportGgufFile } from '../../tools/export-gguf';

export interface ShapesModel {
  dir: string;
  name: string;
  manifest: Manifest;
  digest: string; // SHA-256 of manifest.json (its objects' digests are in it: one model version)
  gguf: string;
  exported: boolean; // false: the cached GGUF was reused
}

export const CACHE_DIR = '.cache/bench-shapes';

export async function prepareModel(dir: string, root: string, log: (s: string) => void): Promise<ShapesModel> {
  const abs = resolve(root, dir);
  const manifestFile = join(abs, 'manifest.json');
  if (!existsSync(manifestFile)) {
    const quant = basename(abs).match(/granite-shaped-(q4_0|q8_0)/)?.[1];
    const how = quant ? `make it with \`npm run make:granite -- --quant ${quant}\`` : 'give a moe-edge/1 model folder';
    throw new Error(`bench:shapes: no model at ${dir} (${manifestFile} missing): ${how}`);
  }
  const bytes = await readFile(manifestFile);
  const manifest = parseManifest(JSON.parse(bytes.toString('utf8')));
  const digest = createHash('sha256').update(bytes).digest('hex');
  const cache = resolve(root, CACHE_DIR);
  const gguf = join(cache, `${manifest.name}-${digest.slice(0, 16)}.gguf`);
  const exported = !existsSync(gguf);
  if (exported) {
    await mkdir(cache, { recursive: true });
    log(`exporting ${dir} to ${gguf}`);
    // written beside, then renamed: an interrupted export never leaves a truncated file under the cached name
    await exportGgufFile(abs, `${gguf}.partial`);
    await rename(`${gguf}.partial`, gguf);
  }
  return { dir: abs, name: manifest.name, manifest, digest, gguf, exported };
}

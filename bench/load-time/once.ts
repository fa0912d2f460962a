// One timed model load in a fresh process, run by bench/load-time/run.ts: ours (loadTextModel from a folder, every
// digest checked), llama.cpp's (openLlama of the same weights as GGUF), or the SHA-256 checks alone. Prints one JSON line.
//   npx tsx bench/load-time/once.ts ours|llama|digests <model-folder|file.gguf>
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex, sha256Stream } from '../../src/format/digest';
import { objectNames } from '../../src/format/manifest';
import { loadTextModel } from '../../src/engine/load';
import { readManifest } from '../../src/store/source';
import { fsSource, FS_STREAM_CHUNK_BYTES } from '../../src/store/source-fs';
import { makeKernels } from '../../tools/kernels-node';
import { loadLlama, openLlama } from '../peers/llama';

/** What one load measured; `ms` is the load alone (runtime start-up, module compile and binding set-up excluded). */
export interface LoadSample {
  engine: 'ours' | 'llama' | 'digests';
  ms: number;
  /** Page faults the process took during it: first touches of fresh memory, the floor of a load on this machine. */
  minorFaults: number;
  /** ours: heap bytes of the weights; digests: bytes hashed. */
  bytes?: number;
}

const [engine, path] = process.argv.slice(2);

async function timed(run: () => Promise<number | undefined>): Promise<Omit<LoadSample, 'engine'>> {
  const faults0 = process.resourceUsage().minorPageFault;
  const t0 = performance.now();
  const bytes = await run();
  return { ms: performance.now() - t0, minorFaults: process.resourceUsage().minorPageFault - faults0, bytes };
}

async function ours(): Promise<Omit<LoadSample, 'engine'>> {
  const kernels = await makeKernels();
  return timed(async () => (await loadTextModel(fsSource(path), kernels)).weights.bytes);
}

async function llama(): Promise<Omit<LoadSample, 'engine'>> {
  await loadLlama(); // the native binding, once per process: not part of loading a model
  let dispose = async () => {};
  const sample = await timed(async () => {
    const s = await openLlama(path, { contextSize: 512 });
    dispose = () => s.dispose();
    return undefined;
  });
  await dispose();
  return sample;
}

/**
 * The SHA-256 checks of a load, alone: every object it verifies, already in memory, hashed as the load hashes it
 * (trunk.bin streamed in FS_STREAM_CHUNK_BYTES chunks through sha256Stream, the rest whole through WebCrypto).
 */
async function digests(): Promise<Omit<LoadSample, 'engine'>> {
  const manifest = await readManifest(fsSource(path));
  const objects = await Promise.all(Object.keys(manifest.objects).map(async (name) => ({ name, bytes: new Uint8Array(await readFile(join(path, name))) })));
  return timed(async () => {
    let total = 0;
    for (const { name, bytes } of objects) {
      if (name === objectNames.trunk) {
        const hash = sha256Stream();
        for (let at = 0; at < bytes.length; at += FS_STREAM_CHUNK_BYTES) await hash.update(bytes.subarray(at, at + FS_STREAM_CHUNK_BYTES));
        await hash.hex();
      } else {
        await sha256Hex(bytes);
      }
      total += bytes.length;
    }
    return total;
  });
}

const run = { ours, llama, digests }[engine as LoadSample['engine']];
if (!run || !path) {
  process.stderr.write('usage: tsx bench/load-time/once.ts ours|llama|digests <model-folder|file.gguf>\n');
  process.exit(2);
}
const sample: LoadSample = { engine: engine as LoadSample['engine'], ...(await run()) };
process.stdout.write(JSON.stringify(sample) + '\n');
process.exit(0); // node-llama-cpp keeps handles open after dispose

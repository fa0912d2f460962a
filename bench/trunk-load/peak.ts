// Memory peak of loading a model's trunk in Node, streamed (loadTrunk) vs the former whole-object read
// (readVerified, then each tensor uploaded from it): JS memory (heapUsed + arrayBuffers) sampled every ms
// during the load, and the WASM heap after it. Run: npx tsx --expose-gc bench/trunk-load/peak.ts <model dir> [streamed|whole]
import { loadTrunk } from '../../src/engine/model';
import { uploadMat } from '../../src/engine/weights';
import { loadNodeKernels } from '../../src/kernels/load-node';
import { readManifest, readVerified } from '../../src/store/source';
import { fsSource } from '../../src/store/source-fs';

const MiB = 2 ** 20;
const [dir, mode = 'streamed'] = process.argv.slice(2);
if (!dir) throw new Error('usage: peak.ts <model dir> [streamed|whole]');
const source = fsSource(dir);
const manifest = await readManifest(source);
const k = await loadNodeKernels();
const js = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};
(globalThis as { gc?: () => void }).gc?.();
const base = js();
let peak = base;
const timer = setInterval(() => (peak = Math.max(peak, js())), 1);
const t0 = performance.now();
if (mode === 'whole') {
  const trunk = await readVerified(source, manifest, 'trunk.bin');
  peak = Math.max(peak, js());
  for (const entry of Object.values(manifest.tensors)) {
    if (entry.object !== 'trunk.bin') continue;
    uploadMat(k, entry, trunk);
    await new Promise((r) => setImmediate(r)); // the former loader awaited between tensors
  }
  peak = Math.max(peak, js());
} else {
  await loadTrunk(k, source, manifest);
}
peak = Math.max(peak, js());
clearInterval(timer);
const ms = performance.now() - t0;
const wasm = k.heap.memory.buffer.byteLength;
console.log(
  `${mode}: trunk.bin ${(manifest.objects['trunk.bin'].bytes / MiB).toFixed(1)} MiB -> WASM heap ${(wasm / MiB).toFixed(1)} MiB ` +
    `(in use ${(k.heap.usedBytes / MiB).toFixed(1)}); JS peak above baseline ${((peak - base) / MiB).toFixed(1)} MiB; ` +
    `load peak (WASM + JS above baseline) ${((wasm + peak - base) / MiB).toFixed(1)} MiB; ${ms.toFixed(0)} ms`,
);

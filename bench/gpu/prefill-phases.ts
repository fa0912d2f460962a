// Where a webgpu prefill's time goes, phase by phase (WebGpuTrunk.phaseMs): the attention block and router with
// their read-back, grouping the picks on the host, the experts with upload and read-back, the weighted sum on the
// host; per prompt length, one prompt at a time, on the adapter Dawn opens. For a GPU machine
// (bench/gpu/device-check.sh PHASES=1); on lavapipe it runs, slowly, as a rehearsal.
//   npx tsx bench/gpu/prefill-phases.ts [--model .cache/models/granite-shaped-q4_0] [--lengths 64,256,1024] [--kv q8_0]
//                                       [--chunk 64]  (positions a trunk pass takes at once)
import { parseArgs } from 'node:util';
import type { KvCacheType } from '../../src/engine/kv-cache';
import { loadNodeKernels } from '../../src/kernels/load-node';
import { fsSource } from '../../src/store/source-fs';
import { loadBackendModel } from '../../gpu-backend/model';
import { selectDevice } from '../../gpu-backend/devices/select';
import type { WebGpuExpertDevice } from '../../gpu-backend/devices/webgpu/expert-device';
import { GpuTrunk } from '../../gpu-backend/prefill/gpu-trunk';
import type { PhaseMs } from '../../gpu-backend/devices/webgpu/trunk';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string', default: '.cache/models/granite-shaped-q4_0' },
    lengths: { type: 'string', default: '64,256,1024' },
    kv: { type: 'string', default: 'q8_0' },
    chunk: { type: 'string' },
  },
});
const source = fsSource(o.model);
const dev = await selectDevice('webgpu', { log: (l) => console.error(l) });
const model = await loadBackendModel(source, dev);
const trunk = await GpuTrunk.load(source, model.manifest, dev as WebGpuExpertDevice, await loadNodeKernels());
if (o.chunk) trunk.maxChunk = Number(o.chunk);
const a = model.manifest.architecture;
console.log(`chunks of ${o.chunk ?? 'the default'} positions`);
console.log(`| prompt tokens | total ms | tok/s | trunk (attention + router, GPU + read-back) | route (host) | experts (GPU + upload/read-back) | combine (host) | KV hand-off and the rest |`);
console.log('|---|---|---|---|---|---|---|---|');
for (const n of [8, ...o.lengths.split(',').map(Number)]) {
  let seed = n;
  const x = new Float32Array(n * a.hiddenSize).map(() => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.02);
  const ph: PhaseMs = { trunk: 0, route: 0, experts: 0, combine: 0 };
  trunk.phaseMs = ph;
  const t0 = performance.now();
  await trunk.prefill(x, o.kv as KvCacheType, async () => {});
  const ms = performance.now() - t0;
  trunk.phaseMs = null;
  if (n === 8) continue; // warm-up: pipelines compiled, buffers made
  const pct = (v: number) => `${v.toFixed(0)} ms (${((100 * v) / ms).toFixed(0)}%)`;
  const rest = ms - ph.trunk - ph.route - ph.experts - ph.combine;
  console.log(`| ${n} | ${ms.toFixed(0)} | ${((n * 1000) / ms).toFixed(0)} | ${pct(ph.trunk)} | ${pct(ph.route)} | ${pct(ph.experts)} | ${pct(ph.combine)} | ${pct(rest)} |`);
}
trunk.destroy();
await dev.close();

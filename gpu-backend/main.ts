// CLI entry of the GPU backend: parse flags and env, pick the device, load this replica's experts (local folder
// or R2 through the S3 API), serve. `npm run backend -- --help` lists the flags.
import { parseArgs } from 'node:util';
import { fsSource } from '../src/store/source-fs';
import { s3Source } from '../src/store/source-s3';
import type { ObjectSource } from '../src/store/source';
import { tagHex } from '../src/protocol/expert-wire';
import { parseIdRange, type IdRange } from '../src/protocol/id-range';
import { Batcher } from './batcher';
import { selectDevice, type DeviceChoice } from './devices/select';
import { Metrics } from './metrics';
import { loadBackendModel, type BackendModel } from './model';
import { loadNodeKernels } from '../src/kernels/load-node';
import { loadTrunk, withExperts } from '../src/engine/model';
import type { ExpertDevice } from './devices/device';
import { PrefillService, type PrefillForward } from './prefill/service';
import type { WebGpuExpertDevice } from './devices/webgpu/expert-device';
import { startServer } from './server';
import { ExpertService } from './service';

const HELP = `moe-edge gpu-backend: computes cold experts for the Worker

  npm run backend -- [flags]

  --model <dir | r2:<path>>   model folder (default models/default), or a model in R2 through the S3 API:
                              r2:<path> reads <R2_PREFIX>/<path>/manifest.json ... (env below)
  --device auto|webgpu|cpu    default auto: webgpu when an adapter is found, else cpu
  --host <addr>               default 127.0.0.1
  --port <n>                  default 8788 (0: any free port; the chosen one is printed)
  --threads <n>               cpu device worker threads (default min(8, cores))
  --layers <a-b>              layers this replica serves (default all), e.g. 0-11 or 5
  --experts <a-b>             experts this replica serves in each of its layers (default all)
  --batch-window-ms <ms>      wait this long to merge calls (default 0: merge calls of one event-loop turn)
  --max-in-flight <n>         device batches at once; later calls merge into the next (default 2)
  --prefill auto|on|off       serve the prefill call (POST /v1/prefill): load the trunk too and run whole prompts,
                              streaming their KV cache to the Worker. Needs every layer and expert; default auto:
                              on when this replica holds them all
  --max-prefills <n>          prompts prefilled at once (each holds its KV cache here; later ones wait; default 4)
  --insecure-no-token         serve without BACKEND_TOKEN (local development only)

env: BACKEND_TOKEN (required unless --insecure-no-token): clients send Authorization: Bearer <token>
     R2_ENDPOINT (https://<account>.r2.cloudflarestorage.com), R2_BUCKET, R2_PREFIX (optional),
     R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_REGION (default auto): for --model r2:<path>`;

function fail(message: string): never {
  console.error(`gpu-backend: ${message}`);
  process.exit(2);
}

function parseRange(flag: string, v: string | undefined): IdRange | undefined {
  if (v === undefined) return undefined;
  return parseIdRange(v) ?? fail(`--${flag} takes a range like 0-7 or 3, got ${JSON.stringify(v)}`);
}

function parseInteger(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`--${flag} takes an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function modelSource(spec: string): ObjectSource {
  const r2 = /^(?:r2|s3):(.*)$/.exec(spec);
  if (!r2) return fsSource(spec);
  const env = (name: string, required = true): string => {
    const v = process.env[name];
    if (!v && required) fail(`--model ${spec} needs the environment variable ${name}`);
    return v ?? '';
  };
  const prefix = [env('R2_PREFIX', false), r2[1]].map((s) => s.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/');
  return s3Source({
    endpoint: env('R2_ENDPOINT'),
    bucket: env('R2_BUCKET'),
    prefix,
    accessKeyId: env('R2_ACCESS_KEY_ID'),
    secretAccessKey: env('R2_SECRET_ACCESS_KEY'),
    region: process.env.R2_REGION || undefined,
  });
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string', default: 'models/default' },
        device: { type: 'string', default: 'auto' },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8788' },
        threads: { type: 'string' },
        layers: { type: 'string' },
        experts: { type: 'string' },
        'batch-window-ms': { type: 'string' },
        'max-in-flight': { type: 'string' },
        prefill: { type: 'string', default: 'auto' },
        'max-prefills': { type: 'string' },
        'insecure-no-token': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    fail(`${(e as Error).message}\n\n${HELP}`);
  }
  if (values.help) {
    console.log(HELP);
    return;
  }
  const device = values.device as DeviceChoice;
  if (!['auto', 'webgpu', 'cpu'].includes(device)) fail(`--device takes auto, webgpu or cpu, got ${device}`);
  const token = process.env.BACKEND_TOKEN || null;
  if (!token && !values['insecure-no-token']) fail('set BACKEND_TOKEN (or pass --insecure-no-token for local development)');
  const port = parseInteger('port', values.port, 0)!;
  const windowRaw = values['batch-window-ms'];
  const windowMs = windowRaw === undefined ? 0 : Number(windowRaw);
  if (!(windowMs >= 0)) fail(`--batch-window-ms takes a number >= 0, got ${windowRaw}`);

  const log = (line: string) => console.error(`gpu-backend: ${line}`);
  const source = modelSource(values.model);
  const dev = await selectDevice(device, { threads: parseInteger('threads', values.threads, 1), log });
  const t0 = performance.now();
  let lastPct = -1;
  const model = await loadBackendModel(source, dev, {
    layers: parseRange('layers', values.layers),
    experts: parseRange('experts', values.experts),
    onProgress(done, total) {
      const pct = Math.floor((done / total) * 10) * 10;
      if (pct !== lastPct && total >= 50) log(`loading experts: ${pct}% (${done}/${total})`);
      lastPct = pct;
    },
  });
  const metrics = new Metrics();
  const batcher = new Batcher(dev, {
    windowMs,
    maxInFlight: parseInteger('max-in-flight', values['max-in-flight'], 1),
    onBatch(s) {
      metrics.batches++;
      metrics.batchedCalls += s.calls;
      metrics.computeSeconds += s.seconds;
    },
  });
  const service = new ExpertService(model, batcher, metrics);
  const prefill = await loadPrefill(values.prefill, model, source, dev, metrics, parseInteger('max-prefills', values['max-prefills'], 1));
  const server = await startServer({ model, device: dev, service, prefill, metrics, token, host: values.host, port });
  log(`model ${model.name} (tag ${tagHex(model.tag)}) from ${source.describe()}: layers ${model.layers.lo}-${model.layers.hi}, ` +
    `experts ${model.experts.lo}-${model.experts.hi}, ${model.loadedExperts} experts, ${(dev.residentBytes / 2 ** 20).toFixed(1)} MiB on ${dev.name}, ` +
    `loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s${prefill ? '; serves prefill' : ''}${token ? '' : '; NO TOKEN (insecure)'}`);
  console.log(`gpu-backend listening on ${server.url}`); // tests and tools/start.ts read this line

  const stop = async () => {
    await server.close();
    await dev.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

/** The prefill service per --prefill: the trunk into this process's WASM heap beside the device's experts. */
async function loadPrefill(mode: string, model: BackendModel, source: ObjectSource, dev: ExpertDevice, metrics: Metrics, maxConcurrent?: number): Promise<PrefillService | null> {
  if (!['auto', 'on', 'off'].includes(mode)) fail(`--prefill takes auto, on or off, got ${JSON.stringify(mode)}`);
  const a = model.manifest.architecture;
  const all = model.layers.lo === 0 && model.layers.hi === a.numLayers - 1 && model.experts.lo === 0 && model.experts.hi === a.numExperts - 1;
  if (mode === 'off' || (mode === 'auto' && !all)) return null;
  if (!all) fail('--prefill on needs every layer and expert on this replica (drop --layers / --experts)');
  const kernels = await loadNodeKernels();
  // on the webgpu device the whole forward pass runs in WGSL beside its experts and this heap keeps only the token
  // embedding (gpu-trunk.ts is imported here: its module loads Dawn, which a cpu backend never needs)
  const forward: PrefillForward = dev.name === 'webgpu'
    ? { gpu: await (await import('./prefill/gpu-trunk')).GpuTrunk.load(source, model.manifest, dev as WebGpuExpertDevice, kernels) }
    : { trunk: withExperts(await loadTrunk(kernels, source, model.manifest), []) };
  return new PrefillService(model, kernels, forward, dev, metrics, maxConcurrent);
}

main().catch((e) => {
  console.error(`gpu-backend: ${(e as Error).stack ?? e}`);
  process.exit(1);
});

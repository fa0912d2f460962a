// `npm run seed`: puts a model folder (default models/default) into the local R2 that `wrangler dev` uses
// (Miniflare persistence, default .wrangler/state), under "<MODEL_PREFIX>/<MODEL_ID>/" from wrangler.toml.
// Idempotent: an object whose stored SHA-256 already matches is skipped. Offline, like every wrangler use (tools/dev/).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { keepWranglerOffline } from './dev/offline-env';

export interface SeedOptions {
  model?: string; // model folder
  persistTo?: string; // same meaning as `wrangler dev --persist-to`
  modelId?: string; // defaults to MODEL_ID from wrangler.toml
  /** more objects to put beside the model (e.g. shard-layout.json): [name in R2, bytes] */
  extra?: readonly (readonly [string, Uint8Array])[];
  log?: (line: string) => void;
}

/** The objects a model consists of: its manifest and every object the manifest lists. */
export async function modelObjectNames(dir: string): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { objects?: Record<string, unknown> };
  return ['manifest.json', ...Object.keys(manifest.objects ?? {})];
}

export async function seedLocalR2(opts: SeedOptions = {}): Promise<{ written: number; skipped: number; prefix: string }> {
  const dir = resolve(opts.model ?? 'models/default');
  const persistTo = resolve(opts.persistTo ?? '.wrangler/state');
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const names = await modelObjectNames(dir).catch((e: Error) => {
    throw new Error(`cannot read ${dir}/manifest.json (${e.message}); build the default model with \`npm run make:tiny-model\``);
  });
  keepWranglerOffline();
  // imported only now, after the offline settings are in the environment it reads
  const { getPlatformProxy } = await import('wrangler');
  const proxy = await getPlatformProxy<Env>({ configPath: 'wrangler.toml', persist: { path: join(persistTo, 'v3') }, remoteBindings: false });
  try {
    const { MODELS, MODEL_PREFIX } = proxy.env;
    const prefix = `${MODEL_PREFIX ? `${MODEL_PREFIX}/` : ''}${opts.modelId ?? proxy.env.MODEL_ID}/`;
    let written = 0;
    let skipped = 0;
    // the manifest last, as an upload does: until it lands, a running Worker sees the old model or none
    for (const name of [...names.filter((n) => n !== 'manifest.json'), 'manifest.json']) {
      const bytes = await readFile(join(dir, name));
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const key = prefix + name;
      const head = await MODELS.head(key);
      if (head && head.size === bytes.length && head.customMetadata?.sha256 === sha256) {
        skipped++;
        continue;
      }
      await MODELS.put(key, bytes, { customMetadata: { sha256 } });
      written++;
    }
    for (const [name, bytes] of opts.extra ?? []) {
      await MODELS.put(prefix + name, bytes);
      written++;
    }
    log(`seeded local R2 bucket at ${persistTo}: ${prefix} (${written} written, ${skipped} unchanged)`);
    return { written, skipped, prefix };
  } finally {
    await proxy.dispose();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({ options: { model: { type: 'string' }, 'persist-to': { type: 'string' }, 'model-id': { type: 'string' } } });
  await seedLocalR2({ model: values.model, persistTo: values['persist-to'], modelId: values['model-id'] });
}

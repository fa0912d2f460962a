// `npm run cli -- upload`: a converted model folder -> R2 (any S3-compatible store) under <prefix>/, where the
// Worker (MODEL_PREFIX/MODEL_ID) and the backend (--model r2:...) read it. Resumable: an object already stored
// with the manifest's size and SHA-256 (x-amz-meta-sha256) is skipped. manifest.json goes last, so a model
// whose upload stopped half way is never served; a different manifest already at the prefix is deleted first,
// so no isolate loads a mix of two models' objects while they are replaced.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { sha256Hex } from '../src/format/digest';
import { objectNames, parseManifest } from '../src/format/manifest';
import { s3Sink, type S3Sink } from '../src/store/sink-s3';

export interface UploadOptions {
  /** local model folder (manifest.json and the objects it lists) */
  model: string;
  sink: S3Sink;
  /** objects in flight at once (default 4) */
  concurrency?: number;
  onProgress?: (p: { bytes: number; totalBytes: number; objects: number; totalObjects: number; name: string }) => void;
  log?: (line: string) => void;
}

export interface UploadReport {
  uploaded: string[];
  skipped: string[];
  bytesSent: number;
  /** a different manifest was at the prefix and was deleted before the objects were replaced */
  replacedManifest: boolean;
  /** false when the stored manifest already was this one */
  manifestWritten: boolean;
}

/** A local object whose bytes differ from what its manifest says: never uploaded. */
export class LocalObjectError extends Error {
  constructor(name: string, model: string, detail: string) {
    super(`${join(model, name)} does not match its manifest (${detail}): reconvert the model`);
    this.name = 'LocalObjectError';
  }
}

export async function uploadModel(o: UploadOptions): Promise<UploadReport> {
  const log = o.log ?? (() => {});
  const manifestBytes = new Uint8Array(await readFile(join(o.model, objectNames.manifest)));
  const manifest = parseManifest(JSON.parse(new TextDecoder().decode(manifestBytes)));
  const manifestSha = await sha256Hex(manifestBytes);
  const report: UploadReport = { uploaded: [], skipped: [], bytesSent: 0, replacedManifest: false, manifestWritten: false };

  const stored = await o.sink.head(objectNames.manifest);
  if (stored && stored.sha256 !== manifestSha) {
    log(`${o.sink.describe()}/${objectNames.manifest} belongs to another model or version: deleting it before its objects are replaced`);
    await o.sink.delete(objectNames.manifest);
    report.replacedManifest = true;
  }

  const names = Object.keys(manifest.objects).sort((a, b) => manifest.objects[b].bytes - manifest.objects[a].bytes); // big first: the tail stays busy
  const totalBytes = names.reduce((s, n) => s + manifest.objects[n].bytes, 0) + manifestBytes.length;
  let bytes = 0;
  let objects = 0;
  const done = (name: string, size: number) => {
    bytes += size;
    objects++;
    o.onProgress?.({ bytes, totalBytes, objects, totalObjects: names.length + 1, name });
  };

  let next = 0;
  let failed = false;
  const lane = async () => {
    while (next < names.length && !failed) {
      const name = names[next++];
      const want = manifest.objects[name];
      const there = await o.sink.head(name);
      if (there && there.bytes === want.bytes && there.sha256 === want.sha256) {
        report.skipped.push(name);
        done(name, want.bytes);
        continue;
      }
      const body = new Uint8Array(await readFile(join(o.model, name)));
      if (body.length !== want.bytes) throw new LocalObjectError(name, o.model, `${body.length} bytes, the manifest says ${want.bytes}`);
      const sha = await sha256Hex(body);
      if (sha !== want.sha256) throw new LocalObjectError(name, o.model, `sha256 ${sha}, the manifest says ${want.sha256}`);
      await o.sink.put(name, body, sha);
      report.uploaded.push(name);
      report.bytesSent += body.length;
      done(name, body.length);
    }
  };
  const lanes = Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 4, names.length)) }, () =>
    lane().catch((e) => {
      failed = true; // the other lanes finish their object and stop: what is stored is kept for the next run
      throw e;
    }),
  );
  const results = await Promise.allSettled(lanes);
  const error = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (error) throw error.reason;

  // every object is in place: now the manifest, which makes the model visible
  if (!stored || stored.sha256 !== manifestSha) {
    await o.sink.put(objectNames.manifest, manifestBytes, manifestSha);
    report.manifestWritten = true;
    report.bytesSent += manifestBytes.length;
  }
  done(objectNames.manifest, manifestBytes.length);
  return report;
}

const USAGE = `usage: npm run cli -- upload --model <model-folder> --bucket <bucket> [--prefix models/<name>] [--concurrency 4]
env: R2_ENDPOINT (https://<account-id>.r2.cloudflarestorage.com), R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY,
     R2_REGION (default auto)`;

export async function uploadCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { model: { type: 'string' }, bucket: { type: 'string' }, prefix: { type: 'string' }, concurrency: { type: 'string', default: '4' } },
  });
  if (!values.model || !values.bucket) throw new Error(`upload needs --model and --bucket\n${USAGE}`);
  const env = (name: string) => {
    const v = process.env[name];
    if (!v) throw new Error(`upload needs the environment variable ${name}\n${USAGE}`);
    return v;
  };
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency takes an integer >= 1, got ${values.concurrency}`);
  const manifest = parseManifest(JSON.parse(await readFile(join(values.model, objectNames.manifest), 'utf8')));
  const prefix = (values.prefix ?? `models/${manifest.name}`).replace(/^\/+|\/+$/g, '');
  const sink = s3Sink({
    endpoint: env('R2_ENDPOINT'),
    bucket: values.bucket,
    prefix,
    accessKeyId: env('R2_ACCESS_KEY_ID'),
    secretAccessKey: env('R2_SECRET_ACCESS_KEY'),
    region: process.env.R2_REGION || undefined,
  });

  const MiB = 2 ** 20;
  const bar = new cliProgress.SingleBar(
    { format: 'upload [{bar}] {percentage}% | {mib}/{totalMib} MiB | {value}/{total} objects | {name}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const r = await uploadModel({
      model: values.model,
      sink,
      concurrency,
      log,
      onProgress(p) {
        const payload = { mib: (p.bytes / MiB).toFixed(1), totalMib: (p.totalBytes / MiB).toFixed(1), name: p.name };
        if (!started) {
          bar.start(p.totalObjects, 0, payload);
          started = true;
        }
        bar.update(p.objects, payload);
      },
    });
    bar.stop();
    const [head, id] = [prefix.split('/').slice(0, -1).join('/'), prefix.split('/').at(-1)];
    process.stdout.write(
      `${sink.describe()}: uploaded ${r.uploaded.length} objects (${(r.bytesSent / MiB).toFixed(1)} MiB), ${r.skipped.length} already there; ` +
        `manifest.json ${r.manifestWritten ? 'written last' : 'unchanged'}\n` +
        `serve it with MODEL_PREFIX = "${head}" and MODEL_ID = "${id}" (wrangler.toml [vars]); the backend: --model r2:${id} with R2_BUCKET=${values.bucket} R2_PREFIX=${head}\n`,
    );
  } catch (e) {
    bar.stop();
    log('upload stopped; the manifest was not written, so nothing half-uploaded is served. Run the same command again to resume.');
    throw e;
  }
}

// `npm run cli -- upload` (tools/upload.ts over src/store/sink-s3.ts) against an S3-compatible server on
// loopback (test/helpers/s3-server.ts; R2 itself cannot run here): every object lands with its digest and
// reads back verified through the backend's own s3Source; manifest.json is always the last write; an
// interrupted upload publishes nothing and resumes with only what is missing; bad local files never leave.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/format/digest';
import { parseManifest } from '../../../src/format/manifest';
import { readManifest, readVerified } from '../../../src/store/source';
import { s3Sink } from '../../../src/store/sink-s3';
import { s3Source } from '../../../src/store/source-s3';
import { LocalObjectError, uploadModel } from '../../../tools/upload';
import { startS3Server, type S3TestServer } from '../../helpers/s3-server';

const BUCKET = 'models-bucket';
const KEY_ID = 'upload-test-key';
const MODEL = 'models/default';
let s3: S3TestServer;
let tmp: string;
const manifest = parseManifest(JSON.parse(await readFile(join(MODEL, 'manifest.json'), 'utf8')));
const objectCount = Object.keys(manifest.objects).length;

beforeAll(async () => {
  s3 = await startS3Server(KEY_ID);
  tmp = await mkdtemp(join(tmpdir(), 'moe-upload-'));
});
afterAll(async () => {
  await s3?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const opts = (prefix: string) => ({ endpoint: s3.endpoint, bucket: BUCKET, prefix, accessKeyId: KEY_ID, secretAccessKey: 'secret', retries: 0 });
const upload = (prefix: string, model = MODEL) => uploadModel({ model, sink: s3Sink(opts(prefix)), concurrency: 3 });
/** requests since `from` of one method under a prefix, as object names */
const requests = (from: number, method: string, prefix: string) =>
  s3.log.slice(from).filter((r) => r.method === method && r.key.startsWith(`${BUCKET}/${prefix}/`)).map((r) => r.key.slice(`${BUCKET}/${prefix}/`.length));
const stored = (prefix: string) => [...s3.objects.keys()].filter((k) => k.startsWith(`${BUCKET}/${prefix}/`)).map((k) => k.slice(`${BUCKET}/${prefix}/`.length));

async function copyModel(name: string): Promise<string> {
  const dir = join(tmp, name);
  await cp(MODEL, dir, { recursive: true });
  return dir;
}

describe('upload to R2 (S3 API)', () => {
  it('puts every object with its sha256, the manifest last; the backend reads the model back verified', async () => {
    const from = s3.log.length;
    const r = await upload('models/default');
    expect(r).toMatchObject({ skipped: [], replacedManifest: false, manifestWritten: true });
    expect(r.uploaded.sort()).toEqual(Object.keys(manifest.objects).sort());
    const puts = requests(from, 'PUT', 'models/default');
    expect(puts).toHaveLength(objectCount + 1);
    expect(puts.at(-1)).toBe('manifest.json');
    for (const [name, o] of Object.entries(manifest.objects)) {
      expect(s3.objects.get(`${BUCKET}/models/default/${name}`)!.meta['x-amz-meta-sha256'], name).toBe(o.sha256);
    }
    const src = s3Source(opts('models/default'));
    const m = await readManifest(src);
    for (const name of Object.keys(m.objects)) await readVerified(src, m, name);
  });

  it('running it again sends nothing', async () => {
    const from = s3.log.length;
    const r = await upload('models/default');
    expect(r).toMatchObject({ uploaded: [], bytesSent: 0, manifestWritten: false });
    expect(r.skipped).toHaveLength(objectCount);
    expect(requests(from, 'PUT', 'models/default')).toEqual([]);
  });

  it('an interrupted upload publishes no manifest, and the next run sends only what is missing', async () => {
    const failing = `${BUCKET}/resume/default/experts/1/3.bin`;
    s3.failPuts.add(failing);
    await expect(upload('resume/default')).rejects.toThrow(/experts\/1\/3\.bin: S3 answered 500/);
    const after = stored('resume/default');
    expect(after).not.toContain('manifest.json');
    expect(after).not.toContain('experts/1/3.bin');
    expect(after.length).toBeGreaterThan(0);

    s3.failPuts.delete(failing);
    const from = s3.log.length;
    const r = await upload('resume/default');
    const puts = requests(from, 'PUT', 'resume/default');
    expect(puts.filter((p) => after.includes(p))).toEqual([]); // nothing stored before is sent again
    expect(r.skipped.sort()).toEqual(after.sort());
    expect(puts).toContain('experts/1/3.bin');
    expect(puts.at(-1)).toBe('manifest.json');
    expect(stored('resume/default')).toHaveLength(objectCount + 1);
  });

  it('an object of the right size without the right digest is sent again', async () => {
    const key = `${BUCKET}/models/default/experts/0/2.bin`;
    s3.objects.get(key)!.meta['x-amz-meta-sha256'] = '0'.repeat(64);
    delete s3.objects.get(`${BUCKET}/models/default/experts/0/5.bin`)!.meta['x-amz-meta-sha256'];
    const from = s3.log.length;
    const r = await upload('models/default');
    expect(r.uploaded.sort()).toEqual(['experts/0/2.bin', 'experts/0/5.bin']);
    expect(requests(from, 'PUT', 'models/default').sort()).toEqual(['experts/0/2.bin', 'experts/0/5.bin']);
    expect(s3.objects.get(key)!.meta['x-amz-meta-sha256']).toBe(manifest.objects['experts/0/2.bin'].sha256);
  });

  it('another model at the prefix: its manifest goes before any object is replaced, the new one comes last', async () => {
    // a new version: one expert object differs
    const dir = await copyModel('renamed');
    const file = join(dir, 'experts/1/1.bin');
    const bytes = await readFile(file);
    bytes[3] ^= 1;
    await writeFile(file, bytes);
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    m.objects['experts/1/1.bin'].sha256 = await sha256Hex(bytes);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ ...m, name: 'renamed' }));
    const from = s3.log.length;
    const r = await upload('models/default', dir);
    expect(r).toMatchObject({ replacedManifest: true, manifestWritten: true, uploaded: ['experts/1/1.bin'] });
    const writes = s3.log.slice(from).filter((x) => x.method === 'PUT' || x.method === 'DELETE').map((x) => `${x.method} ${x.key.split('/').slice(3).join('/')}`);
    expect(writes).toEqual(['DELETE manifest.json', 'PUT experts/1/1.bin', 'PUT manifest.json']);
    expect(JSON.parse(s3.objects.get(`${BUCKET}/models/default/manifest.json`)!.body.toString()).name).toBe('renamed');
  });

  it('a local object that does not match its manifest is never uploaded', async () => {
    const dir = await copyModel('corrupt');
    const file = join(dir, 'experts/0/0.bin');
    const bytes = await readFile(file);
    bytes[7] ^= 1;
    await writeFile(file, bytes);
    await expect(upload('corrupt/default', dir)).rejects.toThrow(LocalObjectError);
    await expect(upload('corrupt/default', dir)).rejects.toThrow(/experts\/0\/0\.bin does not match its manifest \(sha256 /);
    expect(stored('corrupt/default')).not.toContain('experts/0/0.bin');
    expect(stored('corrupt/default')).not.toContain('manifest.json');
  });
});

describe('npm run cli -- upload', () => {
  const tsx = createRequire(import.meta.url).resolve('tsx/cli');
  const cli = (args: string[], env: Record<string, string>) =>
    promisify(execFile)(process.execPath, [tsx, 'tools/cli.ts', 'upload', ...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  const env = () => ({ R2_ENDPOINT: s3.endpoint, R2_ACCESS_KEY_ID: KEY_ID, R2_SECRET_ACCESS_KEY: 'secret' });

  it('uploads with env R2_*, prefix models/<name> by default, and says how to serve it', async () => {
    const { stdout } = await cli(['--model', MODEL, '--bucket', 'cli-bucket'], env());
    expect(stdout).toMatch(new RegExp(`s3://cli-bucket/models/${manifest.name}: uploaded ${objectCount} objects \\([\\d.]+ MiB\\), 0 already there; manifest.json written last`));
    expect(stdout).toContain(`MODEL_PREFIX = "models" and MODEL_ID = "${manifest.name}"`);
    expect(s3.objects.has(`cli-bucket/models/${manifest.name}/manifest.json`)).toBe(true);
  });

  it('names what is missing', async () => {
    await expect(cli(['--model', MODEL], env())).rejects.toThrow(/upload needs --model and --bucket/);
    await expect(cli(['--model', MODEL, '--bucket', 'b'], { R2_ENDPOINT: '' })).rejects.toThrow(/R2_ENDPOINT/);
  });
});

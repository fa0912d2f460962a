// Reading a model back from a folder: whole and ranged reads, and the integrity checks that stop a
// corrupt, truncated or missing object before the engine uses it.
import { appendFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectNotFoundError, ShardIntegrityError } from '../../../src/common/errors';
import { sha256Hex } from '../../../src/format/digest';
import { ManifestError, type Manifest } from '../../../src/format/manifest';
import { readManifest, readVerified, ShortReadError, streamVerified } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { convert } from '../../../tools/convert';
import { sharedPath } from '../../shared-dir';

const FIXTURE = sharedPath('fixtures', 'mixtral');

let dir: string;
let manifest: Manifest;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'moe-edge-source-'));
  manifest = (await convert({ inDir: FIXTURE, outDir: join(dir, 'model'), quant: 'q8_0', warn: () => {} })).manifest;
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('sha256Hex', () => {
  it('matches the FIPS 180-2 test vector', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('fsSource', () => {
  it('reads whole objects and byte ranges', async () => {
    const src = fsSource(join(dir, 'model'));
    const whole = await src.get('experts/1/3.bin');
    expect(whole).toEqual(new Uint8Array(await readFile(join(dir, 'model/experts/1/3.bin'))));
    expect(await src.getRange('experts/1/3.bin', 100, 50)).toEqual(whole.subarray(100, 150));
    expect(await src.getRange('experts/1/3.bin', whole.length, 0)).toEqual(new Uint8Array(0));
    expect(src.describe()).toBe(join(dir, 'model'));
  });

  it('streams an object in chunks that add up to it; a missing one is ObjectNotFoundError', async () => {
    const src = fsSource(join(dir, 'model'));
    const parts: Uint8Array[] = [];
    for await (const chunk of src.stream('trunk.bin')) parts.push(chunk.slice()); // chunks may share a buffer
    expect(Buffer.concat(parts)).toEqual(await readFile(join(dir, 'model/trunk.bin')));
    const drain = async (name: string) => {
      for await (const _ of src.stream(name));
    };
    await expect(drain('experts/9/9.bin')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(drain('../model/trunk.bin')).rejects.toBeInstanceOf(ManifestError);
  });

  it('reports missing objects, short ranges and names that escape the folder', async () => {
    const src = fsSource(join(dir, 'model'));
    await expect(src.get('experts/9/9.bin')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(src.getRange('nope.bin', 0, 4)).rejects.toBeInstanceOf(ObjectNotFoundError);
    const size = manifest.objects['trunk.bin'].bytes;
    await expect(src.getRange('trunk.bin', size - 10, 20)).rejects.toBeInstanceOf(ShortReadError);
    await expect(src.get('../model/trunk.bin')).rejects.toBeInstanceOf(ManifestError);
    await expect(src.get('/etc/passwd')).rejects.toBeInstanceOf(ManifestError);
  });
});

describe('readVerified', () => {
  it('returns every listed object of an intact model', async () => {
    const src = fsSource(join(dir, 'model'));
    expect(await readManifest(src)).toEqual(manifest);
    for (const [name, entry] of Object.entries(manifest.objects)) expect((await readVerified(src, manifest, name)).length).toBe(entry.bytes);
  });

  it('names the object whose byte was flipped', async () => {
    const path = join(dir, 'model/experts/1/3.bin');
    const good = await readFile(path);
    const bad = Buffer.from(good);
    bad[1234] ^= 0x01;
    await writeFile(path, bad);
    try {
      const err = await readVerified(fsSource(join(dir, 'model')), manifest, 'experts/1/3.bin').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ShardIntegrityError);
      const e = err as ShardIntegrityError;
      expect(e.object).toBe('experts/1/3.bin');
      expect(e.message).toContain('experts/1/3.bin');
      expect(e.expected.sha256).toBe(manifest.objects['experts/1/3.bin'].sha256);
      expect(e.actual.sha256).not.toBe(e.expected.sha256);
      expect(e.actual.bytes).toBe(e.expected.bytes);
      expect([e.status, e.code, e.type]).toEqual([500, 'shard_integrity', 'server_error']);
    } finally {
      await writeFile(path, good);
    }
  });

  it('detects truncated and extended objects', async () => {
    const path = join(dir, 'model/trunk.bin');
    const good = await readFile(path);
    const src = fsSource(join(dir, 'model'));
    try {
      await truncate(path, good.length - 64);
      const err = (await readVerified(src, manifest, 'trunk.bin').catch((e: unknown) => e)) as ShardIntegrityError;
      expect(err).toBeInstanceOf(ShardIntegrityError);
      expect([err.object, err.actual.bytes, err.expected.bytes]).toEqual(['trunk.bin', good.length - 64, good.length]);
      await writeFile(path, good);
      await appendFile(path, new Uint8Array(1));
      await expect(readVerified(src, manifest, 'trunk.bin')).rejects.toBeInstanceOf(ShardIntegrityError);
    } finally {
      await writeFile(path, good);
    }
  });

  it('reports deleted and unlisted objects as missing', async () => {
    const src = fsSource(join(dir, 'model'));
    const path = join(dir, 'model/experts/0/0.bin');
    const good = await readFile(path);
    try {
      await rm(path);
      await expect(readVerified(src, manifest, 'experts/0/0.bin')).rejects.toThrow(/experts\/0\/0\.bin not found/);
    } finally {
      await writeFile(path, good);
    }
    await expect(readVerified(src, manifest, 'experts/0/99.bin')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });
});

describe('streamVerified', () => {
  it('passes the bytes within the manifest size, then checks size and digest like readVerified', async () => {
    const src = fsSource(join(dir, 'model'));
    const parts: Uint8Array[] = [];
    await streamVerified(src, manifest, 'trunk.bin', (chunk, offset) => {
      expect(offset).toBe(parts.reduce((n, p) => n + p.length, 0));
      parts.push(chunk.slice());
    });
    expect(Buffer.concat(parts)).toEqual(Buffer.from(await readVerified(src, manifest, 'trunk.bin')));
    const path = join(dir, 'model/trunk.bin');
    const good = await readFile(path);
    try {
      await appendFile(path, new Uint8Array(3));
      let passed = 0;
      const err = (await streamVerified(src, manifest, 'trunk.bin', (chunk) => void (passed += chunk.length)).catch((e: unknown) => e)) as ShardIntegrityError;
      expect(err).toBeInstanceOf(ShardIntegrityError);
      expect([err.actual.bytes, err.expected.bytes, passed]).toEqual([good.length + 3, good.length, good.length]);
    } finally {
      await writeFile(path, good);
    }
    await expect(streamVerified(src, manifest, 'experts/0/99.bin', () => {})).rejects.toBeInstanceOf(ObjectNotFoundError);
  });
});

describe('readManifest', () => {
  it('rejects a manifest that is not JSON or not moe-edge/1', async () => {
    const m = join(dir, 'bad');
    await mkdir(m);
    await writeFile(join(m, 'manifest.json'), '{ not json');
    await expect(readManifest(fsSource(m))).rejects.toThrow(/manifest\.json is not JSON/);
    await writeFile(join(m, 'manifest.json'), JSON.stringify({ ...manifest, format: 'moe-edge/0' }));
    await expect(readManifest(fsSource(m))).rejects.toThrow(/invalid model manifest: format/);
  });
});

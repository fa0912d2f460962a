// Fuzz of the manifest, the root of trust of a model (it carries every other object's digest): random JSON,
// random edits of the real manifest (models/default) and random bytes in manifest.json give a valid Manifest
// or ManifestError, never another exception; and loading a model whose manifest has edited tensor or object
// entries (offsets, sizes, dtypes, object names, digests) either works or fails with a clear, typed error
// (ManifestError, or a MoeError naming the object), never a RangeError from the heap or garbage weights.
import { mkdtemp, cp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTextModel } from '../../../src/engine/load';
import { MoeError } from '../../../src/common/errors';
import { ManifestError, parseManifest } from '../../../src/format/manifest';
import { readManifest } from '../../../src/store/source';
import { fsSource } from '../../../src/store/source-fs';
import { loadNodeKernels } from '../../../src/kernels/load-node';
import { fuzzParams, fuzzRuns, fuzzTimeout, mutatedBytes, thrown } from '../../helpers/fuzz';

const MODEL = 'models/default';
let real: Record<string, any>;
let realBytes: Uint8Array;
let dir: string;

beforeAll(async () => {
  realBytes = new Uint8Array(await readFile(join(MODEL, 'manifest.json')));
  real = JSON.parse(new TextDecoder().decode(realBytes));
  dir = await mkdtemp(join(tmpdir(), 'moe-manifest-fuzz-'));
  await cp(MODEL, dir, { recursive: true });
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Every JSON path of `v` (objects and arrays), for picking a place to edit. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) paths(c, [...at, Array.isArray(v) ? Number(k) : k], out);
  return out;
}

const weird = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(0, -1, 1.5, 2 ** 31, 2 ** 53 + 2, 1e308, '', 'q8_0', 'f32', 'q2_K', '../trunk.bin', '/etc/passwd', 'a'.repeat(64), null, [], {}),
);

type Edit = { path: (string | number)[]; op: 'set' | 'delete'; value: unknown };

/** Applies edits to a deep copy of `base`. */
function edited(base: unknown, edits: Edit[]): unknown {
  const copy = structuredClone(base) as Record<string | number, any>;
  for (const e of edits) {
    if (e.path.length === 0) continue;
    let node: any = copy;
    for (const k of e.path.slice(0, -1)) node = node?.[k];
    if (!node || typeof node !== 'object') continue;
    const last = e.path.at(-1)!;
    if (e.op === 'delete') delete node[last];
    else node[last] = e.value;
  }
  return copy;
}

function editsOf(base: unknown, under?: (p: (string | number)[]) => boolean): fc.Arbitrary<Edit[]> {
  const all = paths(base).filter((p) => p.length > 0 && (!under || under(p)));
  const edit = fc.record({ path: fc.constantFrom(...all), op: fc.constantFrom<'set' | 'delete'>('set', 'set', 'delete'), value: weird });
  return fc.array(edit, { minLength: 1, maxLength: 3 });
}

function parsesOrRefuses(json: unknown): 'parsed' | 'refused' {
  const e = thrown(() => parseManifest(json));
  if (e === undefined) return 'parsed';
  if (!(e instanceof ManifestError)) throw new Error(`escaped as ${(e as Error)?.name}: ${(e as Error)?.message ?? e}`);
  return 'refused';
}

describe('manifest parser fuzz', () => {
  it(`${fuzzRuns(300)} random JSON values are refused with ManifestError`, () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
      expect(parsesOrRefuses(v)).toBe('refused');
    }), fuzzParams(300));
  });

  it(`${fuzzRuns(500)} edits of the real manifest: a valid manifest or ManifestError`, () => {
    const seen = { parsed: 0, refused: 0 };
    fc.assert(fc.property(editsOf(real), (edits) => void seen[parsesOrRefuses(edited(real, edits))]++), fuzzParams(500));
    expect(seen.refused).toBeGreaterThan(0);
    expect(seen.parsed).toBeGreaterThan(0);
  }, fuzzTimeout(500, 20));

  it(`${fuzzRuns(200)} corrupt manifest.json files: readManifest refuses them with ManifestError`, async () => {
    const source = fsSource(dir);
    await fc.assert(
      fc.asyncProperty(mutatedBytes(realBytes), async (bytes) => {
        await writeFile(join(dir, 'manifest.json'), bytes);
        const e = await readManifest(source).then(() => undefined, (err: unknown) => err);
        if (e !== undefined && !(e instanceof ManifestError)) throw new Error(`escaped as ${(e as Error)?.name}: ${(e as Error)?.message}`);
      }),
      fuzzParams(200),
    );
    await writeFile(join(dir, 'manifest.json'), realBytes);
  }, fuzzTimeout(200, 50));
});

describe('model loading with an edited manifest', () => {
  // edits of what points into objects: tensor entries and the object list
  const entryEdits = () => editsOf(real, (p) => p[0] === 'tensors' || p[0] === 'objects');

  it(`${fuzzRuns(150)} edited tensor and object entries: loads, or fails with ManifestError / a MoeError naming the object`, async () => {
    const source = fsSource(dir);
    const seen = { loaded: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(entryEdits(), async (edits) => {
        const json = edited(real, edits);
        await writeFile(join(dir, 'manifest.json'), JSON.stringify(json));
        const kernels = await loadNodeKernels(undefined, { maximumPages: 1024 }); // 64 MiB: a runaway allocation fails fast
        const e = await loadTextModel(source, kernels).then(() => undefined, (err: unknown) => err);
        if (e === undefined) {
          seen.loaded++;
          return;
        }
        seen.refused++;
        if (!(e instanceof ManifestError || e instanceof MoeError)) throw new Error(`escaped as ${(e as Error)?.name}: ${(e as Error)?.message ?? e}`);
      }),
      fuzzParams(150),
    );
    await writeFile(join(dir, 'manifest.json'), realBytes);
    expect(seen.refused).toBeGreaterThan(0);
  }, fuzzTimeout(150, 200));
});

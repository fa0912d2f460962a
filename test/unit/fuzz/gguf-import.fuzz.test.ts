// Fuzz of `convert --in file.gguf` on mutated copies of llama.cpp's q8_0 fixture: the import either writes a
// model whose manifest parses, or fails with a GGUF or config error that names the problem; no other
// exception escapes and no folder is left with a manifest after a failure.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { GgufError } from '../../../tools/convert/gguf';
import { HfConfigError } from '../../../tools/convert/hf-config';
import { convert } from '../../../tools/convert';
import { fuzzParams, fuzzRuns, fuzzTimeout, mutatedBytes } from '../../helpers/fuzz';
import { sharedPath } from '../../shared-dir';

const seed = new Uint8Array(readFileSync(sharedPath('fixtures', 'mixtral', 'model-q8_0.gguf')));
const dir = mkdtempSync(join(tmpdir(), 'moe-edge-gguf-import-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('GGUF import fuzz', () => {
  it(`${fuzzRuns(300)} mutations of a real file: imported or refused with a GGUF/config error`, async () => {
    const seen = { imported: 0, refused: 0 };
    let n = 0;
    await fc.assert(
      fc.asyncProperty(mutatedBytes(seed), async (bytes) => {
        const file = join(dir, `in-${n}.gguf`);
        const out = join(dir, `out-${n++}`);
        writeFileSync(file, bytes);
        try {
          await convert({ inDir: file, outDir: out, warn: () => {} });
          seen.imported++;
        } catch (e) {
          if (!(e instanceof GgufError || e instanceof HfConfigError)) throw new Error(`escaped as ${(e as Error)?.name}: ${(e as Error)?.message}`);
          expect(existsSync(join(out, 'manifest.json'))).toBe(false);
          seen.refused++;
        } finally {
          rmSync(file, { force: true });
          rmSync(out, { recursive: true, force: true });
        }
      }),
      fuzzParams(300),
    );
    expect(seen.refused).toBeGreaterThan(0);
  }, fuzzTimeout(300, 200));
});

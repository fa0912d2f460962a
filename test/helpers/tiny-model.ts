// A tiny q8_0 model for tests that need fixed, small shapes (hidden 64, 2 layers, 8 experts), whatever the
// embedded default model is: the shared mixtral fixture, converted once per test process into a temp folder.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convert } from '../../tools/convert';
import { sharedPath } from '../shared-dir';

let converted: Promise<string> | undefined;

export function tinyModelDir(): Promise<string> {
  converted ??= (async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'moe-edge-tiny-')), 'model');
    await convert({ inDir: sharedPath('fixtures', 'mixtral'), outDir: out, quant: 'q8_0', name: 'tiny', warn: () => {} });
    return out;
  })();
  return converted;
}

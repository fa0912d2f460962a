// bench:shapes refuses a missing model folder before measuring anything, naming the command that makes it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareModel } from '../../../bench/shapes/models';

const root = mkdtempSync(join(tmpdir(), 'shapes-models-'));

describe('prepareModel', () => {
  it('a missing granite-shaped folder names npm run make:granite with its quant', async () => {
    await expect(prepareModel('.cache/models/granite-shaped-q8_0', root, () => {})).rejects.toThrow(/no model at \.cache\/models\/granite-shaped-q8_0 .*npm run make:granite -- --quant q8_0/);
  });

  it('any other missing folder asks for a moe-edge/1 model folder', async () => {
    await expect(prepareModel('models/nothing-here', root, () => {})).rejects.toThrow(/no model at models\/nothing-here .*moe-edge\/1 model folder/);
  });
});

// Where the project's shared, read-only data lives (fixtures with llama.cpp logits, the training corpus):
// `../shared` beside the checkout, or MOE_EDGE_SHARED when a clone sits elsewhere.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const CANDIDATES = [process.env.MOE_EDGE_SHARED, join(ROOT, '../shared')].filter((p): p is string => !!p);

/** Absolute path of a file or folder under the shared data; throws naming every place it looked. */
export function sharedPath(...parts: string[]): string {
  for (const base of CANDIDATES) {
    const p = join(base, ...parts);
    if (existsSync(p)) return p;
  }
  throw new Error(`shared data ${parts.join('/')} not found in ${CANDIDATES.join(', ')} (set MOE_EDGE_SHARED)`);
}

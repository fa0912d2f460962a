// Throwaway: builds wasm/assembly overlaid with the .ts files of wasm/dev/var/NAME/, for A/B timing.
// Usage: node wasm/dev/build-dir.mjs NAME  ->  wasm/dev/build/NAME-{simd,relaxed}.wasm
import asc from 'assemblyscript/asc';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
const here = dirname(fileURLToPath(import.meta.url));
const name = process.argv[2];
const src = join('/tmp/wasm-variant', name);
rmSync(src, { recursive: true, force: true });
mkdirSync(src, { recursive: true });
cpSync(join(here, '..', 'assembly'), src, { recursive: true });
cpSync(join(here, 'var', name), src, { recursive: true });
const out = join(here, 'build');
mkdirSync(out, { recursive: true });
for (const [suffix, extra] of [['simd', []], ['relaxed', ['--enable', 'relaxed-simd']]]) {
  const { error, stderr } = await asc.main([join(src, 'index.ts'), '--runtime', 'stub', '-O3', '--noAssert', '--importMemory', '--noExportMemory', '--enable', 'simd', '--use', 'abort=', ...extra, '--outFile', join(out, `${name}-${suffix}.wasm`)]);
  if (error) { console.error(stderr.toString()); process.exit(1); }
}
console.log('built', name);

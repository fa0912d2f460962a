// Throwaway: builds wasm/assembly with one constant replaced, for A/B timing.
// Usage: node wasm/dev/build-variant.mjs NAME 'const PF_DIST: usize = 2048;' 'const PF_DIST: usize = 0;'
import asc from 'assemblyscript/asc';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
const here = dirname(fileURLToPath(import.meta.url));
const [name, from, to] = process.argv.slice(2);
const src = join('/tmp/wasm-variant', name);
mkdirSync(src, { recursive: true });
cpSync(join(here, '..', 'assembly'), src, { recursive: true });
let hits = 0;
for (const f of readdirSync(src)) {
  if (!f.endsWith('.ts')) continue;
  const t = readFileSync(join(src, f), 'utf8');
  if (from && t.includes(from)) { hits++; writeFileSync(join(src, f), t.replaceAll(from, to)); }
}
if (from && !hits) throw new Error('pattern not found');
const out = join(here, 'build');
mkdirSync(out, { recursive: true });
for (const [suffix, extra] of [['simd', []], ['relaxed', ['--enable', 'relaxed-simd']]]) {
  const { error, stderr } = await asc.main([join(src, 'index.ts'), '--runtime', 'stub', '-O3', '--noAssert', '--importMemory', '--noExportMemory', '--enable', 'simd', '--use', 'abort=', ...extra, '--outFile', join(out, `${name}-${suffix}.wasm`)]);
  if (error) { console.error(stderr.toString()); process.exit(1); }
}
console.log('built', name);

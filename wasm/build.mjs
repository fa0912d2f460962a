// Builds the two kernel modules with AssemblyScript: wasm/build/kernels-simd.wasm (SIMD + scalar twins) and
// wasm/build/kernels-relaxed.wasm (the same, its SIMD dots using relaxed-SIMD). Run with `npm run build:wasm`.
import asc from 'assemblyscript/asc';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'build');
mkdirSync(out, { recursive: true });

const common = [
  join(here, 'assembly', 'index.ts'),
  '--runtime', 'stub', '-O3', '--noAssert', '--importMemory', '--noExportMemory', '--enable', 'simd',
  '--use', 'abort=', // no abort import: kernels never trap on purpose
];
const targets = [
  { file: 'kernels-simd.wasm', extra: [] },
  { file: 'kernels-relaxed.wasm', extra: ['--enable', 'relaxed-simd'] },
];

for (const t of targets) {
  const outFile = join(out, t.file);
  const { error, stderr } = await asc.main([...common, ...t.extra, '--outFile', outFile, '--textFile', outFile.replace(/\.wasm$/, '.wat')]);
  if (error) {
    console.error(stderr.toString());
    console.error(`asc failed for ${t.file}: ${error.message}`);
    process.exit(1);
  }
  console.log(`built wasm/build/${t.file} (${statSync(outFile).size} bytes)`);
}

// xgrammar (structured output) rewritten for workerd: wasm/build/xgrammar.{js,wasm}
await import('./vendor-xgrammar.mjs');

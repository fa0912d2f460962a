// What `wrangler deploy` would upload, built offline (`wrangler deploy --dry-run --outdir`): the Worker's JS and
// the kernels' .wasm modules, gzipped, must stay under the Workers free-plan limit of 3 MiB compressed (paid:
// 10 MiB), so CI catches a dependency that would make the Worker undeployable; and it carries only what the Worker
// runs (src/ and its packages: no converter, tool or backend code). Needs wasm/build (npm test builds it).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, expect, it } from 'vitest';
import { WRANGLER_OFFLINE_ENV } from '../../../tools/dev/offline-env';

const FREE_PLAN_LIMIT = 3 * 2 ** 20;
const OFFLINE = { ...WRANGLER_OFFLINE_ENV, CI: 'true' };
let out: string | undefined;
afterAll(async () => out && rm(out, { recursive: true, force: true }));

it('the deployable bundle (JS + wasm) is under 3 MiB gzipped', async () => {
  expect(existsSync('wasm/build/kernels-simd.wasm'), 'run `npm run build:wasm` first').toBe(true);
  out = await mkdtemp(join(tmpdir(), 'moe-bundle-'));
  // the package's CLI entry (its `exports` hide bin/): beside wrangler-dist/, where its main module lives
  const wrangler = join(dirname(dirname(createRequire(import.meta.url).resolve('wrangler'))), 'bin', 'wrangler.js');
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [wrangler, 'deploy', '--dry-run', '--outdir', out], {
    env: { ...process.env, ...OFFLINE },
    maxBuffer: 1 << 24,
  });
  const files = (await readdir(out)).filter((f) => f.endsWith('.js') || f.endsWith('.mjs') || f.endsWith('.wasm'));
  expect(files.some((f) => f.endsWith('.js'))).toBe(true);
  expect(files.filter((f) => f.endsWith('.wasm'))).toHaveLength(3); // the simd and relaxed kernel builds, xgrammar (structured output)
  let raw = 0;
  let gzipped = 0;
  for (const f of files) {
    const bytes = await readFile(join(out, f));
    raw += bytes.length;
    gzipped += gzipSync(bytes).length;
  }
  // wrangler's own figure, e.g. "Total Upload: 1297.58 KiB / gzip: 248.61 KiB"
  const reported = /Total Upload: ([\d.]+) KiB \/ gzip: ([\d.]+) KiB/.exec(stdout + stderr);
  console.log(
    `bundle: ${files.length} files, ${(raw / 1024).toFixed(1)} KiB, gzip ${(gzipped / 1024).toFixed(1)} KiB` +
      (reported ? ` (wrangler: ${reported[1]} KiB / gzip ${reported[2]} KiB)` : '') +
      `; limit ${FREE_PLAN_LIMIT / 1024} KiB`,
  );
  expect(reported, 'wrangler prints the upload size').not.toBeNull();
  expect(Number(reported![2]) * 1024).toBeLessThan(FREE_PLAN_LIMIT);
  expect(gzipped).toBeLessThan(FREE_PLAN_LIMIT);

  // esbuild (unminified) starts each bundled module with a `// <path>` line: every one of ours must be under src/
  const js = (await Promise.all(files.filter((f) => !f.endsWith('.wasm')).map((f) => readFile(join(out!, f), 'utf8')))).join('\n');
  const modules = [...js.matchAll(/^\/\/ ((?!node_modules\/)[\w./-]+\.(?:ts|js|mjs))$/gm)].map((m) => m[1]);
  expect(modules).toContain('src/engine/forward.ts');
  // besides src/: xgrammar's glue, rewritten for workerd by wasm/vendor-xgrammar.mjs (structured output)
  expect(modules.filter((m) => !m.startsWith('src/') && m !== 'wasm/build/xgrammar.js')).toEqual([]);
  expect(modules.filter((m) => /gguf|safetensors|hf-config|ggml-dequant|source-fs|source-s3|sink-s3/.test(m))).toEqual([]);
}, 120_000);

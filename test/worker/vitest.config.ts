// The "worker" test project: tests run inside workerd (Cloudflare vitest integration) against the real
// Worker (wrangler.toml, src/worker.ts) with a local Miniflare R2 seeded from models/default.
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineProject } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));

export default defineProject({
  root,
  plugins: [cloudflareTest({ wrangler: { configPath: `${root}/wrangler.toml` } })],
  test: {
    name: 'worker',
    include: ['test/worker/**/*.test.ts'],
    globalSetup: ['test/worker/global-setup.ts'],
    setupFiles: ['test/worker/seed.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

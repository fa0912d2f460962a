// The "worker" test project: tests run inside workerd (Cloudflare vitest integration) against the real
// Worker (wrangler.toml, src/worker.ts) with a local Miniflare R2 seeded from models/default, and the real
// GPU backend on loopback (started by global-setup.ts; its URL and token become the Worker's bindings).
// Vitest roots a project at its config file's folder, so the paths below are relative to test/worker.
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineProject } from 'vitest/config';

const wranglerToml = fileURLToPath(new URL('../../wrangler.toml', import.meta.url));

export default defineProject({
  plugins: [
    cloudflareTest(({ inject }) => {
      const backend = inject('backend');
      return {
        wrangler: { configPath: wranglerToml },
        miniflare: { bindings: { BACKEND_URL: backend.url, BACKEND_TOKEN: backend.token, ADMIN_TOKEN: backend.adminToken } },
      };
    }),
  ],
  test: {
    name: 'worker',
    include: ['**/*.test.ts'],
    globalSetup: ['./global-setup.ts', './global-setup-hardening.ts'],
    setupFiles: ['./seed.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});

// Test projects: "unit" runs in Node (kernels, format, engine, CLI, e2e); "worker" runs inside workerd
// through the Cloudflare vitest integration (see test/worker/vitest.config.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      'test/worker/vitest.config.ts',
    ],
  },
});

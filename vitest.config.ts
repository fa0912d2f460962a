// Test projects: "unit" runs in Node, in-process only (kernels, format, engine, planning): the fast lane,
// `npm run test:fast`. "process" starts processes (the GPU backend, wrangler/workerd, the CLI, llama.cpp,
// a browser) through tools/dev/ and test/helpers. "worker" runs inside workerd through the Cloudflare vitest
// integration (see test/worker/vitest.config.ts). `npm test` runs all three.
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
      {
        test: {
          name: 'process',
          include: ['test/process/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
      'test/worker/vitest.config.ts',
    ],
  },
});

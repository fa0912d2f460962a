// The WebGPU suites alone, for a machine with a GPU (bench/gpu/device-check.sh): the kernel conformance suite's
// webgpu executor, the WGSL trunk against forward.ts, and the backend's remote prefill on --device webgpu.
// The root config also loads the workerd project, whose plugin is not carried to the device machine.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/unit/kernels/webgpu.test.ts', 'test/unit/kernels/webgpu/**/*.test.ts', 'test/process/backend/prefill.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
  },
});

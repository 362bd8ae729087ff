import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Native threads and process-wide vendor state: one process per test file.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The simulator aborts the process on a broken driver contract (nvmlShutdown while another
    // thread is inside NVML, unloading it under a call): every test checks that for free.
    env: { GTSIM_STRICT: '1' },
    reporters: ['default', './test/summary-reporter.ts'],
  },
});

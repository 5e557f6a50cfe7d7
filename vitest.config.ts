import { defineConfig } from 'vitest/config';

// Tests start real nginx instances and spawn the real CLI, so they are slow-ish and
// process-heavy: separate processes (forks) and at most 2 workers for a 2-core machine.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    minWorkers: 1,
    maxWorkers: 2,
    reporters: ['default'],
    // Recompile dist/ when sources are newer, so tests that spawn bin/nffi-inspect.js
    // never run a stale CLI.
    globalSetup: ['test/harness/global-setup.ts'],
  },
});

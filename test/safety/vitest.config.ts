// `npm run test:safety`: issue 11's proof in one run (docs/safety.md). The tests behind each
// guarantee (the hostile corpora among them), the soak at 10 minutes (NFFI_SOAK_SECONDS, 600
// unless set), the faults, the cross-user tests and the known product bugs (known-bugs.spec.ts,
// which fail until fixed and are not part of `npm test`). One file at a time, so that the soak's
// and the corpora's stall and RSS figures are the worker's own and not the neighbours'; a
// summary at the end (summary-reporter.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));

export const SAFETY_FILES = [
  // 1. serve auth
  'test/serve-auth.test.ts',
  // 2. read-only conditions, 5. raw comparisons (the conditions corpus)
  'test/conditions.test.ts',
  // 3. root CLI paths, 4. FIFOs
  'test/run-dir-safety.test.ts',
  'test/attach.test.ts',
  'test/registry.test.ts',
  // 6. bounded frames (the frames corpus), 7. terminal escapes, 8. honest answers
  'test/hostile-frames.test.ts',
  'test/cli-format.test.ts',
  // faults the safety tests point to rather than repeat
  'test/probe-resilience.test.ts',
  'test/ffi-reload.test.ts',
  // soak, faults, cross-user, known bugs
  'test/safety/*.test.ts',
  'test/safety/known-bugs.spec.ts',
];

export default defineConfig({
  root,
  test: {
    include: SAFETY_FILES,
    env: { NFFI_SOAK_SECONDS: process.env.NFFI_SOAK_SECONDS ?? '600' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    minWorkers: 1,
    maxWorkers: 1,
    reporters: ['default', './test/safety/summary-reporter.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
  },
});

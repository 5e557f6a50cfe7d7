// Runs once before the test files: recompile dist/ if sources changed, so tests that spawn
// bin/nffi-inspect.js never run a stale build. Only the tsc step: `npm test` has already
// run the full bootstrap, and `npm ci` must never run under a live vitest.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const bootstrap = fileURLToPath(new URL('../../scripts/bootstrap', import.meta.url));
  execFileSync(bootstrap, ['tsc'], { stdio: ['ignore', 'inherit', 'inherit'] });
}

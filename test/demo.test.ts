// `npm run demo` as a newcomer sees it: live stats of every example runtime,
// requests served, none failed, and nginx gone afterwards.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('demo', () => {
  it('prints live runtime stats and stops cleanly', async () => {
    const { stdout } = await run('node', ['dist/demo/run.js', '--duration', '3'], { cwd: ROOT, timeout: 30_000 });
    expect(stdout).toMatch(/nffi demo: nginx master (\d+), workers \d+, \d+/);
    const master = Number(/nginx master (\d+)/.exec(stdout)![1]);
    for (const rt of ['echo', 'slow', 'fail', 'pool', 'go', 'py']) {
      expect(stdout).toMatch(new RegExp(`^\\s*\\d+\\s+${rt}\\s+\\d+\\s+\\d+\\s+[1-9]\\d*\\s+[1-9]`, 'm'));
    }
    const summary = /demo stopped: (\d+) requests served, (\d+) failed; nginx is down/.exec(stdout);
    expect(summary).not.toBeNull();
    expect(Number(summary![1])).toBeGreaterThan(20);
    expect(Number(summary![2])).toBe(0);
    expect(() => process.kill(master, 0)).toThrow();
  });
});

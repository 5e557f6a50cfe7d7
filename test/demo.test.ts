// `npm run demo` as a newcomer sees it: live stats of every example runtime,
// requests served, none failed, and nginx gone afterwards.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitFor } from './harness/nginx.js';

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

  /** The demo printing its tables to a pipe; resolves with it and its nginx master's pid. */
  async function started() {
    const child = spawn('node', ['dist/demo/run.js', '--no-tui'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const master = await waitFor(() => Number(/nginx master (\d+)/.exec(out)?.[1]) || undefined, { timeout: 20_000, what: `the demo's nginx; out: ${out}` });
    return { child, master, exited };
  }

  it.each([
    ['its terminal hangs up (SIGHUP)', (c: ReturnType<typeof spawn>) => { c.kill('SIGHUP'); }],
    ['the reader of its output goes away (| head)', (c: ReturnType<typeof spawn>) => { c.stdout!.destroy(); }],
  ])('stops nginx when %s', async (_what, end) => {
    const { child, master, exited } = await started();
    expect(() => process.kill(master, 0)).not.toThrow();
    end(child);
    expect(await exited).toBe(0);
    await waitFor(() => { try { process.kill(master, 0); return false; } catch { return true; } }, { timeout: 5_000, what: `nginx ${master} gone` });
  }, 40_000);
});

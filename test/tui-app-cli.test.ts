// `nffi-inspect attach` as users run it, where the TUI cannot run: stdin and stdout not a
// terminal, TERM=dumb. One line naming the one-shot commands, exit 1, nothing attached (the pid
// is not even looked at); and its flags checked before anything else.
import { describe, expect, it } from 'vitest';
import { oneLineError, runCli } from './harness/cli.js';

describe('attach without a terminal', () => {
  it('a pipe: one line naming the one-shot commands, exit 1', async () => {
    const r = await runCli(['attach', '1']);
    expect(r.status).toBe(1);
    const line = oneLineError(r);
    expect(line).toMatch(/needs a terminal on stdin and stdout/);
    for (const cmd of ['coroutines', 'stack', 'queue', 'tasks', 'breakpoint']) expect(line).toContain(cmd);
    expect(r.stdout).toBe('');
  });

  it.each([
    [['attach', '1', '--refresh', '10ms'], /--refresh must be at least 50ms/],
    [['attach', '1', '--warn-p99', 'soon'], /invalid --warn-p99 'soon'/],
    [['attach', '1', '--warn-depth', '10', '--bad-depth', '5'], /--bad-depth must not be below --warn-depth/],
    [['attach', 'x'], /invalid PID 'x'/],
  ])('%j: a usage error, exit 2', async (args, message) => {
    const r = await runCli(args);
    expect(r.status).toBe(2);
    expect(oneLineError(r)).toMatch(message);
  });
});

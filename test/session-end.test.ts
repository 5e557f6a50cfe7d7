// A breakpoint that outlives what it was armed on: the probe's link to a worker is lost while
// the worker still serves (the CLI stopped past the agent's 5 s heartbeat, then continued), and
// nginx quits under a running `breakpoint MASTER`, in-process and through a `serve` probe. The
// user must be told, and never be left with a command that waits, armed nowhere, for its timeout.
import { describe, expect, it } from 'vitest';
import { Session } from '../probe/session.js';
import { BP_CLI_FILE, BP_CLI_HTTP, BREAK_LINE, FIXTURE_LUA } from './harness/bp-cli-app.js';
import { startCli, stopCliAfterEach, type RunningCli } from './harness/cli.js';
import { http, useNginx, waitFor, type NginxHandle } from './harness/nginx.js';

const LOC = `${BP_CLI_FILE}:${BREAK_LINE}`;
const armed = (cli: RunningCli): any[] => cli.lines().filter((e) => e.event === 'armed');

stopCliAfterEach();

async function armOnAll(nginx: NginxHandle, extra: string[] = []): Promise<RunningCli> {
  const cli = startCli(['breakpoint', String(nginx().masterPid), LOC, '--json', ...extra]);
  await waitFor(() => armed(cli).length >= 2, { timeout: 10_000, what: `armed on both workers; out: ${cli.out()} err: ${cli.err()}` });
  return cli;
}

describe('a link lost while the workers serve', () => {
  const nginx = useNginx({ workers: 2, http: BP_CLI_HTTP, luaPath: [FIXTURE_LUA] });

  it('breakpoint MASTER stopped past the heartbeat: on SIGCONT it says each worker let go, arms again, and hits', async () => {
    const cli = await armOnAll(nginx);
    const log0 = nginx().errorLog().length;
    cli.child.kill('SIGSTOP');
    try {
      await waitFor(() => (nginx().errorLog().slice(log0).match(/detached reason=heartbeat timeout/g) ?? []).length === 2,
        { timeout: 10_000, interval: 100, what: 'both agents to give up on the stopped CLI' });
    } finally {
      cli.child.kill('SIGCONT');
    }
    await waitFor(() => armed(cli).length >= 4, { timeout: 10_000, what: `armed again on both; out: ${cli.out()} err: ${cli.err()}` });
    const removed = cli.lines().filter((e) => e.event === 'removed');
    expect(removed.map((e) => e.pid).sort()).toEqual(nginx().workerPids().sort());
    for (const e of removed) expect(e.reason).toMatch(/^worker detached: /);
    expect(cli.child.exitCode).toBe(null);
    // armed again for real: a request hits it
    for (let i = 0; i < 20 && !cli.lines().some((e) => e.event === 'hit'); i++) await http(nginx().url(`/work?n=${i}`));
    expect(cli.lines().some((e) => e.event === 'hit')).toBe(true);
  }, 40_000);
});

describe('links lost again and again', () => {
  const nginx = useNginx({ workers: 1, http: BP_CLI_HTTP, luaPath: [FIXTURE_LUA] });

  it('a worker whose link drops right after each attach is tried with growing delays, then left detached with why', async () => {
    const session = await Session.open(nginx().masterPid, { retryMs: [100, 300, 600] });
    const pid = session.targets()[0]!.pid;
    const attachedAt: number[] = [];
    const off = session.onTargetEvent((method) => {
      if (method === 'Target.attachedToTarget') attachedAt.push(Date.now());
    });
    // what a link that fails at once looks like from here: closed under the session
    const drop = (): void => (session as unknown as { workers: Map<number, { link?: { close(r: string): void } }> })
      .workers.get(pid)!.link!.close('dropped by the test');
    try {
      const lost: number[] = [];
      for (let i = 0; i < 3; i++) {
        lost.push(Date.now());
        drop();
        await waitFor(() => attachedAt.length === i + 1, { timeout: 5_000, what: `attach ${i + 2}` });
      }
      const delays = attachedAt.map((t, i) => t - lost[i]!);
      expect(delays[0]).toBeGreaterThanOrEqual(100);
      expect(delays[1]).toBeGreaterThanOrEqual(300);
      expect(delays[2]).toBeGreaterThanOrEqual(600);
      drop();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(attachedAt).toHaveLength(3);
      expect(session.targets()[0]).toMatchObject({ pid, attached: false, error: 'dropped by the test' });
    } finally {
      off();
      await session.close();
    }
  }, 30_000);
});

describe('nginx quits under breakpoint MASTER (in-process)', () => {
  const nginx = useNginx({ workers: 2, http: BP_CLI_HTTP, luaPath: [FIXTURE_LUA] });

  it('says the master exited and exits 1 within seconds, not at its timeout', async () => {
    const cli = await armOnAll(nginx);
    const t0 = Date.now();
    process.kill(nginx().masterPid, 'SIGQUIT');
    const code = await cli.exited;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(code).toBe(1);
    // the file loads with the first request: the one warning that it is pending, then the end
    expect(cli.err().trim().split('\n')).toEqual([
      expect.stringMatching(/^nffi-inspect: no loaded chunk matches bp_cli_app\.lua; pending until one loads/),
      `nffi-inspect: bp 1 ended after 0 hits: nginx master ${nginx().masterPid} exited`,
    ]);
  }, 30_000);
});

describe('nginx quits under breakpoint MASTER through a serve probe', () => {
  const nginx = useNginx({ workers: 2, http: BP_CLI_HTTP, luaPath: [FIXTURE_LUA] });

  it('serve and the breakpoint both say the master exited and exit 1', async () => {
    const master = nginx().masterPid;
    const serve = startCli(['serve', String(master)]);
    await waitFor(() => /^serving \d+ /m.test(serve.out()), { timeout: 8_000, what: `serve; ${serve.out()} ${serve.err()}` });
    const cli = await armOnAll(nginx);
    process.kill(master, 'SIGQUIT');
    const [bpCode, serveCode] = await Promise.all([cli.exited, serve.exited]);
    expect({ bpCode, serveCode }).toEqual({ bpCode: 1, serveCode: 1 });
    expect(cli.err().trim().split('\n')).toEqual([
      expect.stringMatching(/^nffi-inspect: no loaded chunk matches bp_cli_app\.lua; pending until one loads/),
      expect.stringMatching(new RegExp(`^nffi-inspect: bp \\d+ ended after 0 hits: nginx master ${master} exited$`)),
    ]);
    expect(serve.err().trim()).toBe(`nffi-inspect: serve ${master} ended: nginx master ${master} exited`);
  }, 30_000);
});

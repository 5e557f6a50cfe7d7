// What happens to a worker when the probe dies or hangs, and whether traffic notices
// inspection: kill -9 and SIGSTOP of a real `serve` probe, and wrk load while the
// one-shot commands inspect the workers over and over.
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { wrk } from '../bench/wrk.js';
import { BIN, runCli } from './harness/cli.js';
import { useNginx, waitFor } from './harness/nginx.js';
import { PARK_HTTP } from './harness/probe-app.js';

function startServe(pid: number): { proc: ChildProcess; ready: Promise<unknown> } {
  const proc = spawn(process.execPath, [BIN, 'serve', String(pid)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const ready = waitFor(() => /^serving \d+ /m.test(out), { timeout: 8_000, what: 'serve to start' });
  return { proc, ready };
}

function detachedCount(log: string, pid: number, reason: string): number {
  return log.split('\n').filter((l) => l.includes(`${pid}#`) && l.includes(`[nffi inspect detached reason=${reason}]`)).length;
}

describe('probe loss', () => {
  const nginx = useNginx({ workers: 1, http: PARK_HTTP });

  it('kill -9 of the probe: the agent detaches at once and a new attach works', async () => {
    const pid = nginx().workerPids()[0]!;
    const before = detachedCount(nginx().errorLog(), pid, 'closed');
    const serve = startServe(pid);
    await serve.ready;
    serve.proc.kill('SIGKILL');
    await waitFor(() => detachedCount(nginx().errorLog(), pid, 'closed') > before,
      { timeout: 5_000, what: 'the agent to notice the probe is gone' });
    const r = await runCli(['coroutines', String(pid), '--json']);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).workers[0].pid).toBe(pid);
  });

  it('a hung probe (SIGSTOP): the agent gives up after the 5 s heartbeat timeout', async () => {
    const pid = nginx().workerPids()[0]!;
    const serve = startServe(pid);
    await serve.ready;
    const t0 = Date.now();
    serve.proc.kill('SIGSTOP');
    try {
      await waitFor(() => nginx().errorLog().includes('[nffi inspect detached reason=heartbeat timeout]'),
        { timeout: 9_000, interval: 200, what: 'the heartbeat timeout' });
      const waited = Date.now() - t0;
      expect(waited).toBeGreaterThanOrEqual(4_000);
      expect(waited).toBeLessThan(8_000);
    } finally {
      serve.proc.kill('SIGKILL');
    }
    const r = await runCli(['queue', String(pid), '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 20_000);
});

describe('inspection under load', () => {
  const nginx = useNginx({ workers: 2, http: PARK_HTTP });

  it('wrk keeps getting answers, with zero errors, while every command runs again and again', async () => {
    const master = String(nginx().masterPid);
    // A fixed number of rounds, not as many as fit in a time: how many fit depends on
    // the machine, and every round must still run while wrk is loading the workers.
    let loadEnded = false;
    const load = wrk(nginx().url('/sleep?s=0.01'), { seconds: 14, connections: 32 })
      .finally(() => { loadEnded = true; });
    const failures: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const args of [['coroutines', master, '--json'], ['tasks', master, '--json'], ['queue', master, '--json']]) {
        const r = await runCli(args);
        if (r.status !== 0) failures.push(`${args[0]}: ${r.stderr}`);
      }
    }
    const roundsUnderLoad = !loadEnded;
    const res = await load;
    expect(failures).toEqual([]);
    expect(roundsUnderLoad, 'all three rounds finished before wrk stopped').toBe(true);
    expect(res.requests).toBeGreaterThan(1_000);
    expect(res.errors).toBe(0);
  }, 45_000);
});

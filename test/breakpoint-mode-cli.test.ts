// Issue 10 end to end: against a real nginx (2 workers) with the agent, `workers PID` says which
// breakpoint mode each worker is in (watching, or which hook and why) and `breakpoint` says it on
// each armed line. The machine decides the mode (hardware watchpoints delivered or not,
// perf_event_paranoid): the tests accept any of the four and check the contract, never skip.
import { describe, expect, it } from 'vitest';
import { BP_CLI_FILE, BP_CLI_HTTP, BREAK_LINE, FIXTURE_LUA } from './harness/bp-cli-app.js';
import { oneLineError, runCli, startCli, stopCliAfterEach } from './harness/cli.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

const MODES = ['watching', 'call hook', 'line hook', 'lua hook'];
const LOC = `${BP_CLI_FILE}:${BREAK_LINE}`;

/** mode/reason as the contract has them: one of the four; a reason whenever not watching. */
function expectMode(m: unknown, who: string): void {
  expect(m, `${who}: breakpoint mode`).toMatchObject({ mode: expect.any(String) });
  const { mode, reason } = m as { mode: string; reason?: unknown };
  expect(MODES, `${who}: mode ${JSON.stringify(m)}`).toContain(mode);
  if (mode !== 'watching') expect(typeof reason === 'string' && reason.trim() !== '', `${who}: reason of ${JSON.stringify(m)}`).toBe(true);
}

stopCliAfterEach();

describe('breakpoint mode per worker', () => {
  const nginx = useNginx({ workers: 2, http: BP_CLI_HTTP, luaPath: [FIXTURE_LUA] });

  // Twice: the second session finds what the first one left (nothing, it should be).
  it.each([1, 2])('workers MASTER --json: breakpoint_mode of each worker (run %d)', async () => {
    const r = await runCli(['workers', String(nginx().masterPid), '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.workers.map((w: any) => w.pid).sort()).toEqual(nginx().workerPids().sort());
    for (const w of doc.workers) expectMode(w.breakpoint_mode, `worker ${w.pid}`);
  });

  // Through a serve that holds MASTER: its worker sockets forward the read-only Agent.getStats
  // (they used to refuse every Agent method, and each mode read unknown: "'Agent.getStats'
  // wasn't found").
  it('workers MASTER --json through a running serve: each worker\'s real breakpoint_mode', async () => {
    const serve = startCli(['serve', String(nginx().masterPid)]);
    try {
      await waitFor(() => /^serving \d+ /m.test(serve.out()), { timeout: 10_000, what: `serve; out: ${serve.out()} err: ${serve.err()}` });
      const r = await runCli(['workers', String(nginx().masterPid), '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.workers.map((w: any) => w.pid).sort()).toEqual(nginx().workerPids().sort());
      for (const w of doc.workers) expectMode(w.breakpoint_mode, `worker ${w.pid} through the serve`);
      expect(serve.err()).toBe('');
    } finally {
      serve.child.kill('SIGINT');
      expect(await serve.exited).toBe(0);
    }
  });

  it('workers MASTER: a bp mode column within 80 columns, the reason on its own line', async () => {
    const r = await runCli(['workers', String(nginx().masterPid)]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^pid +id +user +nginx +ngx_lua +luajit +agent +jit +bp mode$/);
    for (const pid of nginx().workerPids()) {
      const row = lines.find((l) => l.startsWith(`${pid} `));
      expect(row, `row of worker ${pid} in:\n${r.stdout}`).toBeDefined();
      expect(row!.length, row).toBeLessThanOrEqual(80);
      const mode = MODES.find((m) => row!.endsWith(` ${m}`));
      expect(mode, `the mode at the end of: ${row}`).toBeDefined();
      const note = lines.find((l) => l.startsWith(`worker ${pid} bp mode: `));
      if (mode === 'watching') expect(note).toBeUndefined();
      else expect(note, `the reason of worker ${pid} in:\n${r.stdout}`).toMatch(new RegExp(`^worker ${pid} bp mode: ${mode}: \\S`));
    }
  });

  it('breakpoint --json: each armed event carries the worker\'s mode; the human armed line says it', async () => {
    const cli = startCli(['breakpoint', String(nginx().masterPid), LOC, '--log', 'n={n}', '--json']);
    const armedOn = (pid: number) => cli.lines().some((l) => l.event === 'armed' && l.pid === pid && l.state === 'armed');
    // pending until a worker first loads the fixture: requests until both have
    await waitFor(async () => {
      if (nginx().workerPids().every(armedOn)) return true;
      await http(nginx().url('/work?n=1'));
      return false;
    }, { timeout: 20_000, interval: 10, what: `armed on both workers; out: ${cli.out()} err: ${cli.err()}` });
    for (const l of cli.lines().filter((x) => x.event === 'armed' && x.state === 'armed')) expectMode(l.mode, `armed event ${JSON.stringify(l)}`);
    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);

    const human = startCli(['breakpoint', String(nginx().masterPid), LOC, '--log', 'n={n}']);
    const armedLine = new RegExp(`^bp \\d+ armed on worker (\\d+) at \\S*${BP_CLI_FILE.replace('.', '\\.')}:${BREAK_LINE} \\((.+)\\)$`, 'gm');
    const seen = await waitFor(() => {
      const m = [...human.out().matchAll(armedLine)];
      return m.length === 2 ? m : undefined;
    }, { timeout: 10_000, what: `two armed lines; out: ${human.out()} err: ${human.err()}` });
    expect(seen.map((m) => Number(m[1])).sort()).toEqual(nginx().workerPids().sort());
    for (const m of seen) expect(m[2], m[0]).toMatch(/^(watching|(call hook|line hook|lua hook): \S.*)$/);
    human.child.kill('SIGINT');
    expect(await human.exited).toBe(0);
  });

  it.each([
    [['workers', 'abc'], 2, "nffi-inspect: invalid PID 'abc'"],
    [['workers', String(process.pid)], 1, `nffi-inspect: ${process.pid} is not an nginx master or worker`],
  ])('bad input %j: one line, no stack', async (args, status, line) => {
    const r = await runCli(args);
    expect(r.status).toBe(status);
    expect(oneLineError(r)).toBe(line);
  });
});

// `breakpoint`, `breakpoints` and `delete` against a real nginx (2 workers) with the agent:
// hits from real requests, conditions, logpoints, a rejected condition, cleanup, and a
// breakpoint that a `serve` probe keeps across `nginx -s reload`.
import { readFileSync } from 'node:fs';
import CDP from 'chrome-remote-interface';
import { describe, expect, it } from 'vitest';
import { Session } from '../probe/session.js';
import { BP_CLI_FILE, BP_CLI_HTTP, BREAK_LINE, FIXTURE_LUA } from './harness/bp-cli-app.js';
import { oneLineError, ROOT, runCli, startCli as start, stopCliAfterEach } from './harness/cli.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

const LOC = `${BP_CLI_FILE}:${BREAK_LINE}`;
const protocol = JSON.parse(readFileSync(`${ROOT}/probe/protocol.json`, 'utf8'));

/** Send requests until `until` settles (the CLI exits), one at a time. */
async function drive(url: (i: number) => string, until: Promise<unknown>, max = 400): Promise<void> {
  let done = false;
  void until.then(() => (done = true));
  for (let i = 0; i < max && !done; i++) {
    await http(url(i));
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what()}`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}


stopCliAfterEach();

describe('breakpoint against nginx with the agent', () => {
  const nginx = useNginx({ workers: 2, http: BP_CLI_HTTP, luaPath: [FIXTURE_LUA] });

  async function agentBreakpoints(): Promise<unknown[]> {
    const s = await Session.open(nginx().masterPid);
    try {
      const all = await s.callAll('Debugger.getBreakpoints', {});
      return all.flatMap((r) => (Array.isArray(r.result?.breakpoints) ? r.result!.breakpoints : []));
    } finally {
      await s.close();
    }
  }

  it('MASTER FILE:LINE --count 3 --json prints 3 hits from real requests, then removes it and exits 0', async () => {
    const cli = start(['breakpoint', String(nginx().masterPid), LOC, '--count', '3', '--json']);
    await waitFor(() => cli.lines().filter((l) => l.event === 'armed').length === 2,
      { timeout: 10_000, what: `armed on both workers; out: ${cli.out()} err: ${cli.err()}` });
    const armed = cli.lines().filter((l) => l.event === 'armed');
    expect(armed.map((a) => a.pid).sort()).toEqual(nginx().workerPids().sort());
    // pending until the worker first loads bp_cli_app (the first request it serves)
    for (const a of armed) expect(['armed', 'pending']).toContain(a.state);

    await drive((i) => nginx().url(`/work?n=${i}&user=u${i}`), cli.exited);
    const status = await withTimeout(cli.exited, 10_000, () => cli.out());
    // no worker has loaded bp_cli_app yet in a fresh nginx: said once
    expect(cli.err()).toMatch(/^(nffi-inspect: no loaded chunk matches bp_cli_app\.lua; pending until one loads \([^\n]*\)\n)?$/);
    expect(status).toBe(0);
    const hits = cli.lines().filter((l) => l.event === 'hit');
    expect(hits).toHaveLength(3);
    for (const h of hits) {
      expect(Object.keys(h)).toEqual(['event', 'id', 'pid', 'time', 'source', 'line', 'frames', 'locals', 'upvalues', 'varargs', 'request']);
      expect(h.line).toBe(BREAK_LINE);
      expect(h.source).toContain(BP_CLI_FILE);
      expect(nginx().workerPids()).toContain(h.pid);
      expect(h.frames[0]).toMatchObject({ function: expect.any(String), line: BREAK_LINE });
      expect(h.locals.n).toMatchObject({ type: 'number' });
      expect(h.locals.user).toMatchObject({ type: 'string', value: `u${h.locals.n.value}` });
      expect(h.locals.doubled.value).toBe(h.locals.n.value * 2);
      expect(h.upvalues.calls).toMatchObject({ type: 'number' });
      expect(h.request).toMatchObject({ method: 'GET', uri: expect.stringMatching(/^\/work\?n=\d+/) });
    }
    const removed = cli.lines().filter((l) => l.event === 'removed');
    expect(removed.length).toBeGreaterThan(0);
    for (const r of removed) expect(r).toMatchObject({ id: hits[0].id, reason: 'count' });
    expect(await agentBreakpoints()).toEqual([]);
  });

  it.each([
    ['several words', ['if', 'n', '>', '5']],
    ['one quoted argument', ['if', 'n > 5 and user ~= "skip"']],
  ])('an if condition (%s) filters the hits', async (_, cond) => {
    const cli = start(['breakpoint', String(nginx().masterPid), LOC, ...cond, '--count', '4', '--json']);
    await waitFor(() => cli.lines().filter((l) => l.event === 'armed').length === 2,
      { timeout: 10_000, what: `armed; out: ${cli.out()} err: ${cli.err()}` });
    await drive((i) => nginx().url(`/work?n=${i % 10}&user=u`), cli.exited);
    expect(await withTimeout(cli.exited, 10_000, () => cli.out())).toBe(0);
    const ns = cli.lines().filter((l) => l.event === 'hit').map((h) => h.locals.n.value);
    expect(ns).toHaveLength(4);
    for (const n of ns) expect(n).toBeGreaterThan(5);
  });

  it('a logpoint prints its message on the hit line', async () => {
    const cli = start(['breakpoint', String(nginx().masterPid), LOC, '--log', 'n={n} user={user}', '--count', '2', '--wide']);
    await waitFor(() => (cli.out().match(/^bp \d+ armed on worker/gm) ?? []).length === 2,
      { timeout: 10_000, what: `armed; out: ${cli.out()} err: ${cli.err()}` });
    await drive(() => nginx().url('/work?n=7&user=bob'), cli.exited);
    expect(await withTimeout(cli.exited, 10_000, () => cli.out())).toBe(0);
    const hits = cli.out().split('\n').filter((l) => l.startsWith('[hit bp'));
    expect(hits).toHaveLength(2);
    for (const l of hits) {
      expect(l).toMatch(new RegExp(`^\\[hit bp \\d+\\] pid \\d+ \\S*${BP_CLI_FILE}:${BREAK_LINE} \\d\\d:\\d\\d:\\d\\d\\.\\d{3} GET /work\\?n=7&user=bob n=7 user=bob$`));
    }
    expect(cli.out()).toMatch(/^bp \d+ ended \(count\) after 2 hits$/m);
  });

  it('human output: header line, frames and locals', async () => {
    const cli = start(['breakpoint', String(nginx().masterPid), LOC, '--count', '1', '--wide']);
    await waitFor(() => /armed on worker/.test(cli.out()), { timeout: 10_000, what: `armed; out: ${cli.out()}` });
    await drive(() => nginx().url('/work?n=4&user=ann'), cli.exited);
    expect(await withTimeout(cli.exited, 10_000, () => cli.out())).toBe(0);
    expect(cli.out()).toMatch(new RegExp(`^\\[hit bp \\d+\\] pid \\d+ \\S*${BP_CLI_FILE}:${BREAK_LINE} [\\d:.]+ GET /work\\?n=4&user=ann$`, 'm'));
    expect(cli.out()).toMatch(new RegExp(`^  #0 \\S+ at \\S*${BP_CLI_FILE}:${BREAK_LINE}$`, 'm'));
    expect(cli.out()).toMatch(/^ {6}n = 4$/m);
    expect(cli.out()).toMatch(/^ {6}user = "ann"$/m);
    expect(cli.out()).toMatch(/^ {6}\(upvalue\) calls = \d+$/m);
  });
  it('human output fits 80 columns by default: a path loses its start, file:line and the request stay', async () => {
    const cli = start(['breakpoint', String(nginx().masterPid), LOC, '--count', '1']);
    await waitFor(() => /armed on worker/.test(cli.out()), { timeout: 10_000, what: `armed; out: ${cli.out()}` });
    await drive(() => nginx().url('/work?n=4&user=ann'), cli.exited);
    expect(await withTimeout(cli.exited, 10_000, () => cli.out())).toBe(0);
    const block = cli.out().split('\n').filter((l) => /^\[hit bp|^ {2}#\d| {6}/.test(l));
    expect(block.length).toBeGreaterThan(2);
    for (const l of block) expect([...l].length, l).toBeLessThanOrEqual(80);
    expect(cli.out()).toMatch(new RegExp(`^\\[hit bp \\d+\\] pid \\d+ \\S*${BP_CLI_FILE}:${BREAK_LINE} [\\d:.]+ GET /work\\?n=4&user=ann$`, 'm'));
    expect(cli.out()).toMatch(/^ {6}n = 4$/m);
  });


  it.each([
    ['a syntax error', ['if', 'n >']],
    ['a forbidden call', ['if', 'os.execute("true")']],
  ])('a bad condition (%s): exit 1, one line, nothing armed', async (_, cond) => {
    const r = await runCli(['breakpoint', String(nginx().masterPid), LOC, ...cond]);
    expect(r.status).toBe(1);
    expect(oneLineError(r)).toMatch(new RegExp(`^nffi-inspect: ${LOC.replace(/\./g, '\\.')}: condition rejected: `));
    expect(r.stdout).toBe('');
    expect(await agentBreakpoints()).toEqual([]);
  });

  it('a FILE no loaded chunk matches stays pending (it arms when such a file loads)', async () => {
    const r = await runCli(['breakpoint', String(nginx().masterPid), 'no/such_file.lua:3', '--timeout', '1s']);
    // said once, on stderr (test/breakpoint-spec.test.ts: the nearest loaded names)
    expect(r.stderr).toMatch(/^nffi-inspect: no loaded chunk matches no\/such_file\.lua; pending until one loads \([^\n]*\)\n$/);
    expect(r.status).toBe(0);
    expect(r.stdout.match(/^bp \d+ pending on worker \d+/gm)).toHaveLength(2);
    expect(r.stdout).toMatch(/^bp \d+ ended \(timeout\) after 0 hits$/m);
  });

  it('Ctrl-C removes the breakpoint and exits 0', async () => {
    const cli = start(['breakpoint', String(nginx().masterPid), LOC, '--json']);
    await waitFor(() => cli.lines().filter((l) => l.event === 'armed').length === 2, { timeout: 10_000, what: `armed; out: ${cli.out()}` });
    cli.child.kill('SIGINT');
    expect(await withTimeout(cli.exited, 10_000, () => cli.out())).toBe(0);
    expect(cli.lines().filter((l) => l.event === 'removed').map((l) => l.reason)).toEqual(['deleted', 'deleted']);
    expect(await agentBreakpoints()).toEqual([]);
  });

  it('--timeout removes it and exits 0', async () => {
    const r = await runCli(['breakpoint', String(nginx().masterPid), LOC, '--timeout', '1s', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.event === 'removed').every((l) => l.reason === 'timeout')).toBe(true);
    expect(await agentBreakpoints()).toEqual([]);
  });

  it('breakpoints/delete with no serve probe running', async () => {
    const list = await runCli(['breakpoints', String(nginx().masterPid)]);
    expect(list.status).toBe(0);
    expect(list.stdout).toBe(`no breakpoints (no serve probe holds ${nginx().masterPid})\n`);
    const del = await runCli(['delete', String(nginx().masterPid), '7']);
    expect(del.status).toBe(1);
    expect(oneLineError(del)).toBe(`nffi-inspect: no breakpoint 7: no serve probe holds ${nginx().masterPid}`);
  });

  it('through a serve probe: listed, kept across nginx -s reload (new workers hit), deleted', async () => {
    const master = nginx().masterPid;
    const serve = start(['serve', String(master)]);
    // the default endpoint: a unix socket; the CLI finds it and its token in the registry entry
    await waitFor(() => /^serving \d+ .* on unix:/m.test(serve.out()), { timeout: 8_000, what: `serve socket; ${serve.out()} ${serve.err()}` });
    try {
      const cli = start(['breakpoint', String(master), LOC, 'if', 'n >= 0', '--json']);
      await waitFor(() => cli.lines().filter((l) => l.event === 'armed').length === 2, { timeout: 10_000, what: `armed; out: ${cli.out()} err: ${cli.err()}` });
      const id = cli.lines()[0].id as number;

      const listed = JSON.parse((await runCli(['breakpoints', String(master), '--json'])).stdout);
      expect(listed.breakpoints).toHaveLength(1);
      expect(listed.breakpoints[0]).toMatchObject({ id, spec: { url: BP_CLI_FILE, line: BREAK_LINE, condition: 'n >= 0' }, state: 'armed' });
      expect(listed.breakpoints[0].workers.map((w: any) => w.pid).sort()).toEqual(nginx().workerPids().sort());
      const human = await runCli(['breakpoints', String(master)]);
      expect(human.stdout).toMatch(new RegExp(`^\\s*${id}\\s+${LOC.replace(/\./g, '\\.')}\\s+if n >= 0\\s+\\d+\\s+0\\s+armed 2$`, 'm'));

      const before = nginx().workerPids();
      await nginx().reload();
      const after = nginx().workerPids();
      expect(after.some((p) => before.includes(p))).toBe(false);
      await waitFor(() => after.every((p) => cli.lines().some((l) => l.event === 'armed' && l.pid === p)),
        { timeout: 10_000, what: `armed on the new workers ${after}; out: ${cli.out()}` });
      await waitFor(async () => {
        await http(nginx().url('/work?n=1'));
        return cli.lines().some((l) => l.event === 'hit' && after.includes(l.pid));
      }, { timeout: 10_000, interval: 20, what: `a hit from a new worker; out: ${cli.out()}` });

      const del = await runCli(['delete', String(master), String(id)]);
      expect(del.stderr).toBe('');
      expect(del.stdout).toBe(`deleted bp ${id}\n`);
      expect(await withTimeout(cli.exited, 10_000, () => cli.out())).toBe(0);
      expect(cli.err()).toBe('');
      const gone = await runCli(['delete', String(master), String(id)]);
      expect(gone.status).toBe(1);
      expect(oneLineError(gone)).toMatch(new RegExp(`no breakpoint ${id} in serve probe \\d+`));
      expect(JSON.parse((await runCli(['breakpoints', String(master), '--json'])).stdout).breakpoints).toEqual([]);
    } finally {
      serve.child.kill('SIGINT');
      await serve.exited;
    }
  });

  it('serve: the Debugger domain on a worker socket (shared ids, this worker\'s hits and view)', async () => {
    const serve = start(['serve', String(nginx().masterPid), '--port', '0']);
    const m = await waitFor(() => /http:\/\/127\.0\.0\.1:(\d+)\/json\/list\?token=([0-9a-f]+)/.exec(serve.out()), { timeout: 8_000, what: `serve URL; ${serve.out()} ${serve.err()}` });
    const [port, token] = [Number(m[1]), m[2]];
    const [a, b] = nginx().workerPids() as [number, number];
    const ca = await CDP({ target: `ws://127.0.0.1:${port}/devtools/worker/${a}?token=${token}`, protocol, local: true });
    const cb = await CDP({ target: `ws://127.0.0.1:${port}/devtools/worker/${b}?token=${token}`, protocol, local: true });
    try {
      const hitsA: any[] = [];
      const hitsB: any[] = [];
      ca.on('Debugger.hit', (p) => hitsA.push(p));
      cb.on('Debugger.hit', (p) => hitsB.push(p));
      const set = await ca.Debugger.setBreakpoint({ spec: { url: BP_CLI_FILE, line: BREAK_LINE } });
      expect(set.breakpoint).toMatchObject({ id: expect.any(Number), spec: { url: BP_CLI_FILE, line: BREAK_LINE }, hits: 0, dropped: 0 });
      const id = set.breakpoint.id;
      expect((await cb.Debugger.getBreakpoints()).breakpoints.map((x: any) => x.id)).toEqual([id]);
      await waitFor(async () => {
        await http(nginx().url('/work?n=2'));
        return hitsA.length > 0 && hitsB.length > 0;
      }, { timeout: 10_000, interval: 20, what: `hits on both worker sockets; ${hitsA.length} ${hitsB.length}` });
      expect(hitsA.every((h) => h.pid === a && h.id === id)).toBe(true);
      expect(hitsB.every((h) => h.pid === b && h.id === id)).toBe(true);
      await expect(cb.Debugger.setBreakpoint({ spec: { url: BP_CLI_FILE, line: BREAK_LINE, condition: 'n >' } })).rejects.toThrow(/condition rejected/);
      await cb.Debugger.removeBreakpoint({ id });
      expect((await ca.Debugger.getBreakpoints()).breakpoints).toEqual([]);
      await expect(ca.Debugger.removeBreakpoint({ id })).rejects.toThrow(`no breakpoint ${id}`);
    } finally {
      await ca.close();
      await cb.close();
      serve.child.kill('SIGINT');
      await serve.exited;
    }
    expect(await agentBreakpoints()).toEqual([]);
  });
});

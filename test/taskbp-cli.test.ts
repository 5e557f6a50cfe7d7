// `nffi-inspect breakpoint PID ffi:RUNTIME.METHOD [if COND]` end to end: the real CLI against
// real nginx (2 workers) running the example runtimes, NDJSON and human output.
import { describe, expect, it } from 'vitest';
import { oneLineError, runCli, startCli as start, stopCliAfterEach } from './harness/cli.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { FIXTURE_LUA, TASK_APP_HTTP } from './harness/task-app.js';

stopCliAfterEach();


async function drive(url: (i: number) => string, until: Promise<unknown>, max = 400): Promise<void> {
  let done = false;
  void until.then(() => (done = true));
  for (let i = 0; i < max && !done; i++) {
    await http(url(i));
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('breakpoint ffi:RUNTIME.METHOD', () => {
  const nginx = useNginx({ workers: 2, http: TASK_APP_HTTP, luaPath: [FIXTURE_LUA] });

  it("ffi:echo.echo if '#req > 10' --count 4 --json: enqueue and resume hits of long requests", async () => {
    const cli = start(['breakpoint', String(nginx().masterPid), 'ffi:echo.echo', 'if', '#req > 10', '--count', '4', '--json']);
    await waitFor(() => cli.lines().filter((l) => l.event === 'armed').length === 2,
      { timeout: 10_000, what: `armed on both workers; out: ${cli.out()} err: ${cli.err()}` });
    for (const a of cli.lines().filter((l) => l.event === 'armed')) expect(a.state).toBe('armed');
    await drive((i) => nginx().url(i % 2 ? `/echo?body=long-request-${i}&user=u${i}` : `/echo?body=s${i}`), cli.exited);
    expect(await cli.exited).toBe(0);
    // task_app loads its runtimes on first use: a worker that has not yet is said once
    expect(cli.err()).toMatch(/^(nffi-inspect: no runtime named echo is loaded yet \(loaded: [^)]*\); ffi:echo\.echo fires once one is\n)?$/);
    const hits = cli.lines().filter((l) => l.event === 'hit');
    expect(hits).toHaveLength(4);
    for (const h of hits) {
      expect(Object.keys(h)).toEqual(['event', 'id', 'pid', 'time', 'source', 'line', 'frames', 'locals', 'upvalues', 'varargs', 'request', 'task']);
      expect(h.source).toMatch(/task_app\.lua$/);
      expect(h.task).toMatchObject({ runtime: 'echo', method: 'echo' });
      expect(h.locals.body.value).toMatch(/^long-request-\d+$/);
      if (h.task.phase === 'enqueue') {
        expect(h.task.req_preview).toBe(h.locals.body.value);
        expect(h.task.req_len).toBeGreaterThan(10);
      } else {
        expect(h.task).toMatchObject({ phase: 'resume', ok: true, rc: 0, res_preview: h.locals.body.value });
        expect(Object.keys(h.task.latency_ms).sort()).toEqual(['queue', 'service', 'total', 'wakeup']);
      }
    }
    expect(new Set(hits.map((h) => h.task.phase))).toEqual(new Set(['enqueue', 'resume']));
    expect(cli.lines().filter((l) => l.event === 'removed').every((l) => l.reason === 'count')).toBe(true);
  });

  it("human output: ffi:fail.* if 'rc ~= 0' prints the header, the task line and the caller's locals", async () => {
    const cli = start(['breakpoint', String(nginx().masterPid), 'ffi:fail.*', 'if', 'rc ~= 0', '--count', '1', '--wide']);
    await waitFor(() => (cli.out().match(/^bp \d+ armed on worker \d+$/gm) ?? []).length === 2,
      { timeout: 10_000, what: `armed; out: ${cli.out()} err: ${cli.err()}` });
    await drive(() => nginx().url('/fail?body=boom'), cli.exited);
    expect(await cli.exited).toBe(0);
    const out = cli.out();
    expect(out).toMatch(/^\[hit bp \d+\] pid \d+ \S*task_app\.lua:\d+ [\d:.]+ GET \/fail\?body=boom$/m);
    expect(out).toMatch(/^ {2}task resume fail\.go ok=false rc=1 err="error: boom" res 11 B "error: boom" latency queue [\d.]+ms service [\d.]+ms wakeup [\d.]+ms total [\d.]+ms$/m);
    expect(out).toMatch(/^ {2}#0 \S+ at \S*task_app\.lua:\d+$/m);
    expect(out).toMatch(/^ {6}body = "boom"$/m);
    expect(out).toMatch(/^bp \d+ ended \(count\) after 1 hit$/m);
  });

  it('a malformed ffi: location is a usage error before anything is armed', async () => {
    const r = await runCli(['breakpoint', String(nginx().masterPid), 'ffi:echo']);
    expect(r.status).not.toBe(0);
    expect(oneLineError(r)).toMatch(/expected ffi:RUNTIME\.METHOD/);
  });
});

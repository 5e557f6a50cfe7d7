// The probe and the one-shot commands against a real nginx (2 workers) running the agent:
// JSON shapes, errors users see, permissions, and a session that follows a reload.
import { describe, expect, it } from 'vitest';
import { Session } from '../probe/session.js';
import type { Target } from '../probe/protocol-types.js';
import { oneLineError, ROOT, runCli, runCliUntil } from './harness/cli.js';
import { FFI_APP_HTTP, FIXTURE_LUA } from './harness/ffi-app.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { PARK_HTTP } from './harness/probe-app.js';

const json = (s: string) => JSON.parse(s);

describe('probe against nginx with the agent', () => {
  const nginx = useNginx({ workers: 2, http: PARK_HTTP });

  it('coroutines MASTER --json lists both workers with the documented shape', async () => {
    const parked = http(nginx().url('/sleep?s=8'), { timeout: 15_000 });
    await new Promise((r) => setTimeout(r, 200));
    const r = await runCli(['coroutines', String(nginx().masterPid), '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = json(r.stdout);
    expect(doc.workers.map((w: any) => w.pid).sort()).toEqual(nginx().workerPids().sort());
    const all = doc.workers.flatMap((w: any) => w.coroutines);
    for (const c of all) {
      expect(Object.keys(c).sort()).toEqual(['frames', 'id', 'kind', 'request', 'state', 'top_frame_index', 'wait']);
      for (const f of c.frames) expect(Object.keys(f).filter((k) => k !== 'linedefined').sort()).toEqual(['function', 'line', 'source']);
    }
    // method and $request_uri (with its query string); null when none is known (timers)
    const sleeping = all.find((c: any) => c.kind === 'request' && c.wait?.kind === 'ngx.sleep');
    expect(sleeping, r.stdout).toBeDefined();
    expect(sleeping.request).toEqual({ method: 'GET', uri: '/sleep?s=8' });
    expect(all.filter((c: any) => c.kind === 'timer').every((c: any) => c.request === null)).toBe(true);
    // the human table: the request in its own column, the top frame (the handler's chunk, not
    // the C function it sleeps in) aligned after it
    const human = (await runCli(['coroutines', String(nginx().masterPid)])).stdout.split('\n');
    const head = human[0]!;
    expect(head).toMatch(/^worker\s+id\s+(kind\s+)?state\s+wait\s+request\s+top frame$/);
    const row = human.find((l) => / suspended +ngx\.sleep .*GET \/sleep\?s=8/.test(l));
    expect(row, human.join('\n')).toBeDefined();
    expect(row!.indexOf('GET /sleep?s=8')).toBe(head.indexOf('request'));
    expect(row!.slice(head.indexOf('top frame'))).toMatch(/^(content_by_lua\(nginx\.conf:\d+\):1|nginx\.conf:\d+)( .+)?$/);
    await parked;
  });

  it('tasks and stack show a coroutine parked on an nffi task', async () => {
    // parked long enough for three CLI runs on a loaded 2-core machine (each attaches anew)
    const parked = http(nginx().url('/park?ms=6000'), { timeout: 15_000 });
    const found = await waitFor(async () => {
      const r = await runCli(['tasks', String(nginx().masterPid), '--older-than', '100ms', '--json']);
      if (r.status !== 0) throw new Error(r.stderr);
      const doc = json(r.stdout);
      const w = doc.workers.find((x: any) => x.tasks.length > 0);
      return w ? { pid: w.pid as number, task: w.tasks[0], doc } : undefined;
    }, { timeout: 2_000, interval: 100, what: 'a pending task older than 100 ms' });
    expect(Object.keys(found.task).sort()).toEqual(
      ['age_ms', 'coroutine', 'enqueued_ms', 'id', 'method', 'req_len', 'req_preview', 'runtime', 'state'].sort());
    // enqueued_ms is on the host's monotonic clock (process.hrtime's on Linux), age_ms ago
    const sinceEnqueued = Number(process.hrtime.bigint()) / 1e6 - found.task.enqueued_ms;
    expect(sinceEnqueued).toBeGreaterThanOrEqual(found.task.age_ms - 1);
    expect(sinceEnqueued).toBeLessThan(found.task.age_ms + 10_000);
    expect(found.task.runtime).toBe('e2e_slow');
    expect(found.task.method).toBe('wait');
    expect(found.task.age_ms).toBeGreaterThanOrEqual(100);
    expect(found.task.coroutine).toMatchObject({ id: expect.any(Number), frames: expect.any(Array) });

    const co = found.task.coroutine.id as number;
    const st = await runCli(['stack', String(found.pid), String(co), '--locals', '--json']);
    expect(st.stderr).toBe('');
    const stack = json(st.stdout);
    expect(stack.frames.length).toBeGreaterThan(0);
    expect(stack.request).toEqual({ method: 'GET', uri: '/park?ms=6000' });
    const human = await runCli(['stack', String(found.pid), String(co), '--locals']);
    expect(human.stdout).toMatch(/^request GET \/park\?ms=6000\n#0 .+ at .+/);
    await parked;
  });

  it('tasks --older-than skips the unstamped tasks of a runtime that opted out of instrumentation', async () => {
    const parked = http(nginx().url('/park_mixed?ms=4000'), { timeout: 15_000 });
    const older = await waitFor(async () => {
      const r = await runCli(['tasks', String(nginx().masterPid), '--older-than', '100ms', '--json']);
      if (r.status !== 0) throw new Error(r.stderr);
      const ts = json(r.stdout).workers.flatMap((w: any) => w.tasks);
      return ts.some((t: any) => t.runtime === 'e2e_timed') ? ts : undefined;
    }, { timeout: 3_000, interval: 100, what: 'the instrumented runtime\'s task older than 100 ms' });
    // the opted-out task came first (a lower id) and has no age: older than nothing
    expect(older.filter((t: any) => t.runtime === 'e2e_quiet')).toEqual([]);
    const all = json((await runCli(['tasks', String(nginx().masterPid), '--json'])).stdout)
      .workers.flatMap((w: any) => w.tasks);
    const quiet = all.find((t: any) => t.runtime === 'e2e_quiet');
    const timed = all.find((t: any) => t.runtime === 'e2e_timed');
    expect(quiet).toMatchObject({ method: 'wait', state: 'polled' });
    expect(quiet.age_ms).toBeNull();
    expect(quiet.id).toBeLessThan(timed.id);
    expect(timed.age_ms).toBeGreaterThanOrEqual(100);
    expect((await parked).body.toString()).toMatch(/^true parked true parked/);
  });

  it('queue MASTER --json has the documented runtime shape', async () => {
    await http(nginx().url('/park?ms=10'));
    await http(nginx().url('/park?ms=10'));
    const r = await runCli(['queue', String(nginx().masterPid), '--json']);
    expect(r.stderr).toBe('');
    const doc = json(r.stdout);
    expect(doc.workers).toHaveLength(2);
    const rts = doc.workers.flatMap((w: any) => w.runtimes);
    expect(rts.length).toBeGreaterThan(0);
    for (const rt of rts) {
      // wake: how its responses wake their waiters (issue 15); the reason only where it is not eventfd
      expect(Object.keys(rt).filter((k) => k !== 'wake_reason').sort()).toEqual(
        ['completed', 'depth', 'enqueued', 'in_flight', 'latency_ms', 'latency_sample_every', 'name', 'rejected',
          'spins_in_flight', 'spins_lost', 'timeouts', 'wake'].sort());
      expect(rt.spins_in_flight).toBeGreaterThanOrEqual(0);
      expect(rt.spins_lost).toBeGreaterThanOrEqual(0);
      // latencies from 1 task in 64 beyond one a millisecond (the instrumented libnffi's default);
      // 0 for the runtime of an earlier test that opted out of instrumentation
      expect(rt.latency_sample_every).toBe(rt.name === 'e2e_quiet' ? 0 : 64);
      expect(['eventfd', 'pump']).toContain(rt.wake);
      if (rt.wake === 'pump') expect(rt.wake_reason).toEqual(expect.any(String));
      else expect(rt.wake_reason).toBeUndefined();
      expect(Object.keys(rt.latency_ms).sort()).toEqual(['queue', 'service', 'total', 'wakeup']);
      for (const l of Object.values(rt.latency_ms)) expect(Object.keys(l as object).sort()).toEqual(['p50', 'p99']);
    }
    const human = await runCli(['queue', String(nginx().masterPid)]);
    expect(human.stdout).toMatch(/runtime\s+depth/);
  });

  it('queue --watch --json prints NDJSON until interrupted', async () => {
    const r = await runCliUntil(['queue', String(nginx().masterPid), '--watch', '--json', '--interval', '200ms'], 2_500); // a loaded 2-core machine takes ~1 s to start and attach
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(json(l).workers).toHaveLength(2);
    expect(r.status).toBe(0);
  });

  it('workers and ps report the agent', async () => {
    const w = json((await runCli(['workers', String(nginx().masterPid), '--json'])).stdout);
    expect(w.workers).toHaveLength(2);
    expect(w.workers[0]).toMatchObject({ user: 'nobody', versions: { agent: expect.any(String) }, jit: { enabled: expect.any(Boolean) } });
    // ps attaches only with --agents
    const quick = json((await runCli(['ps', String(nginx().masterPid), '--json'])).stdout);
    expect(quick.masters[0].workers.map((x: any) => x.agent)).toEqual(['not checked', 'not checked']);
    const ps = json((await runCli(['ps', String(nginx().masterPid), '--agents', '--json'])).stdout);
    const mine = ps.masters.find((m: any) => m.pid === nginx().masterPid);
    expect(mine.workers.map((x: any) => x.agent)).toEqual(['ready', 'ready']);
    expect(mine.prefix).toBe(`${nginx().prefix}/`);
    expect(mine.config).toBe(`${nginx().prefix}/conf/nginx.conf`);
  });

  it('a user that is neither root nor the workers\' user gets a one-line permission error', async () => {
    const r = await runCli(['coroutines', String(nginx().masterPid)], { user: 'daemon' });
    expect(r.status).toBe(1);
    expect(oneLineError(r)).toMatch(/^nffi-inspect: permission denied: attaching to worker \d+ \(user nobody\) needs root or nobody$/);
  });

  it('a master session attaches the new workers after a reload', async () => {
    const session = await Session.open(nginx().masterPid);
    try {
      const attached: Target.TargetInfo[] = [];
      session.onTargetEvent((method, params) => {
        if (method === 'Target.attachedToTarget') attached.push((params as Target.AttachedToTargetEvent).target);
      });
      const before = session.targets().map((t) => t.pid);
      await nginx().reload();
      const after = nginx().workerPids();
      await waitFor(() => after.every((p) => session.targets().some((t) => t.pid === p && t.attached)),
        { timeout: 5_000, what: `new workers ${after} attached; targets ${JSON.stringify(session.targets())}` });
      expect(attached.map((t) => t.pid).sort()).toEqual([...after].sort());
      expect(session.targets().map((t) => t.pid).filter((p) => before.includes(p))).toEqual([]);
      const results = await session.callAll('Lua.getCoroutines', {});
      expect(results.map((x) => x.pid).sort()).toEqual([...after].sort());
      expect(results.every((x) => x.error === undefined)).toBe(true);
    } finally {
      await session.close();
    }
  });
});

describe('errors users see', () => {
  it('a pid that is not nginx: exit 1, one line', async () => {
    const r = await runCli(['coroutines', String(process.pid)]);
    expect(r.status).toBe(1);
    expect(oneLineError(r)).toBe(`nffi-inspect: ${process.pid} is not an nginx master or worker`);
  });

  it.each([[['stack', '12', 'x']], [['coroutines', 'abc']], [['tasks', '1', '--older-than', 'soon']]])(
    '%j is a usage error (exit 2)', async (args) => {
      const r = await runCli(args);
      expect(r.status).toBe(2);
      oneLineError(r);
    });

  it('detach of a pid that is not nginx: exit 1, one line', async () => {
    const r = await runCli(['detach', String(process.pid)]);
    expect(r.status).toBe(1);
    expect(oneLineError(r)).toContain('is not an nginx master or worker');
  });
});

describe('nginx without the agent', () => {
  const nginx = useNginx({ workers: 2, http: FFI_APP_HTTP, luaPath: [FIXTURE_LUA] });

  it('names the line to add, exit 1', async () => {
    const r = await runCli(['coroutines', String(nginx().masterPid)]);
    expect(r.status).toBe(1);
    const line = oneLineError(r);
    expect(line).toContain('has no agent');
    expect(line).toContain('init_worker_by_lua_block { require("nffi.inspect").start() }');
    expect(line).toContain('lua_package_path');
  });

  it('detach: not attached, exit 0', async () => {
    const r = await runCli(['detach', String(nginx().masterPid)]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${nginx().masterPid}: not attached\n`);
  });
});

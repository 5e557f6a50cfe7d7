// Task breakpoints (ffi:RUNTIME.METHOD, lua/nffi/inspect/taskbp.lua) against real nginx
// (2 workers as nobody) and the example runtimes, over the raw wire protocol: enqueue and
// resume hits with conditions on req/res/rc, wildcards, count, bad specs, and the binding's
// hook back to nil after removal and at session end.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { AgentClient, type AgentError } from './harness/agent-client.js';
import { FIXTURE_LUA, TASK_APP_HTTP } from './harness/task-app.js';

const TMP = mkdtempSync(join(tmpdir(), 'nffi-taskbp-test-'));
chmodSync(TMP, 0o755);
const RUN_DIR = join(TMP, 'run');

const nginx = useNginx({ workers: 2, http: TASK_APP_HTTP, luaPath: [FIXTURE_LUA], env: { NFFI_INSPECT_RUN_DIR: RUN_DIR } });

let clients: AgentClient[] = [];
beforeAll(async () => {
  clients = await Promise.all(nginx().workerPids().map((pid) => AgentClient.attach({ runDir: RUN_DIR, pid })));
});
afterAll(() => {
  for (const c of clients) c.close();
  rmSync(TMP, { recursive: true, force: true });
});

let nextId = 500;
async function setBp(spec: object): Promise<{ id: number; results: any[] }> {
  const id = nextId++;
  const results = await Promise.all(clients.map((c) => c.request('Debugger.setBreakpoint', { spec, id })));
  return { id, results };
}

async function remove(id: number): Promise<void> {
  await Promise.all(clients.map((c) => c.request('Debugger.removeBreakpoint', { id }).catch(() => undefined)));
}

function events(method: string, id: number): any[] {
  return clients.flatMap((c) => c.events.filter((e) => e.method === method && (e.params.id ?? e.params.breakpoint?.id) === id));
}
const hits = (id: number): any[] => events('Debugger.hit', id).map((e) => e.params);

/** Requests each path until every worker served it `each` times; the number of requests per path. */
async function runBoth(paths: string[], each = 2): Promise<number[]> {
  const counts: number[] = [];
  for (const path of paths) {
    const served = new Map<number, number>();
    const pids = nginx().workerPids();
    for (let n = 0; !pids.every((p) => (served.get(p) ?? 0) >= each); n++) {
      if (n > 400) throw new Error(`${path}: workers served ${JSON.stringify([...served])}`);
      const res = await http(nginx().url(path), { timeout: 10_000 });
      expect(res.status, path).toBe(200);
      const pid = Number(res.headers['x-pid']);
      served.set(pid, (served.get(pid) ?? 0) + 1);
    }
    counts.push([...served.values()].reduce((a, b) => a + b, 0));
  }
  return counts;
}

// a failed test leaves nothing armed for the next one
afterEach(async () => {
  for (const c of clients.filter((x) => !x.closed)) {
    const { breakpoints } = await c.request('Debugger.getBreakpoints');
    for (const b of breakpoints) await c.request('Debugger.removeBreakpoint', { id: b.id });
  }
});

/** Waits until the writer shipped n hits of id (or more). */
async function hitsAtLeast(id: number, n: number): Promise<any[]> {
  await waitFor(() => hits(id).length >= n, { timeout: 5_000, what: `${n} hits of bp ${id}; got ${hits(id).length}` });
  return hits(id);
}

/** The binding's hook on every worker (Agent.getStats), and /hook from each worker. */
async function hookState(): Promise<boolean[]> {
  const stats = await Promise.all(clients.map((c) => c.request('Agent.getStats')));
  const seen = new Map<number, boolean>();
  await waitFor(async () => {
    const r = JSON.parse((await http(nginx().url('/hook'))).body.toString('utf8'));
    seen.set(r.pid, r.hook);
    return nginx().workerPids().every((p) => seen.has(p));
  }, { timeout: 5_000, interval: 0, what: '/hook from both workers' });
  return [...stats.map((s) => s.breakpoints.tasks.hook as boolean), ...seen.values()];
}

describe('task breakpoints', () => {
  it('the binding hook is nil before any task breakpoint', async () => {
    await runBoth(['/echo?body=warm', '/fail?body=warm', '/slow?body=warm']);
    expect(await hookState()).toEqual([false, false, false, false]);
  });

  it('ffi:echo.echo if #req > 10: enqueue and resume hits of long requests only', async () => {
    const { id, results } = await setBp({ url: 'ffi:echo.echo', condition: '#req > 10', rate: 1e6 });
    for (const r of results) expect(r.breakpoint).toMatchObject({ id, state: 'armed', hits: 0, spec: { url: 'ffi:echo.echo' } });
    // armed events travel on the link after the replies: wait for both
    await waitFor(() => events('Debugger.armed', id).length === 2, { timeout: 3_000, what: 'armed on both workers' });
    expect(await hookState()).toEqual([true, true, true, true]);
    const [, long] = await runBoth(['/echo?body=short&user=ann', '/echo?body=a-long-request-body&user=bob']) as [number, number];
    const hs = await hitsAtLeast(id, 2 * long);
    await new Promise((r) => setTimeout(r, 300));
    expect(hits(id)).toHaveLength(2 * long); // enqueue + resume of each long one, short ones never
    const enq = hs.filter((h) => h.task.phase === 'enqueue');
    const res = hs.filter((h) => h.task.phase === 'resume');
    expect(enq).toHaveLength(long);
    expect(res).toHaveLength(long);
    for (const h of enq) {
      expect(h.task).toEqual({ phase: 'enqueue', runtime: 'echo', method: 'echo', req_len: 19, req_preview: 'a-long-request-body' });
      // the snapshot is the caller of rt:echo(...): the route with its locals
      expect(h.source).toMatch(/task_app\.lua$/);
      expect(h.frames[0]).toMatchObject({ source: expect.stringMatching(/task_app\.lua$/), line: h.line });
      expect(h.locals.body).toMatchObject({ type: 'string', value: 'a-long-request-body' });
      expect(h.locals.user).toMatchObject({ type: 'string', value: 'bob' });
      expect(h.request).toMatchObject({ method: 'GET', uri: '/echo?body=a-long-request-body&user=bob' });
      expect(nginx().workerPids()).toContain(h.pid);
    }
    for (const h of res) {
      expect(h.task).toMatchObject({ phase: 'resume', runtime: 'echo', method: 'echo', ok: true, rc: 0, res_len: 19, res_preview: 'a-long-request-body' });
      expect(h.task.err).toBeUndefined();
      const l = h.task.latency_ms;
      for (const k of ['queue', 'service', 'wakeup', 'total']) expect(l[k], k).toBeGreaterThanOrEqual(0);
      expect(l.total).toBeGreaterThanOrEqual(Math.max(l.queue, l.service, l.wakeup) - 1e-6);
      expect(l.total).toBeLessThan(1000);
      expect(h.locals.body.value).toBe('a-long-request-body');
    }
    const list = await Promise.all(clients.map((c) => c.request('Debugger.getBreakpoints')));
    expect(list.map((l) => l.breakpoints.length)).toEqual([1, 1]);
    expect(list.reduce((n, l) => n + l.breakpoints[0].hits, 0)).toBe(2 * long);
    for (const l of list) expect(l.breakpoints[0]).toMatchObject({ id, state: 'armed', dropped: 0 });
    await remove(id);
    // removed events travel on the link after the replies: wait for both
    await waitFor(() => events('Debugger.removed', id).length === 2, { timeout: 3_000, what: 'removed on both workers' });
    expect(events('Debugger.removed', id).map((e) => e.params.reason)).toEqual(['deleted', 'deleted']);
    expect(await hookState()).toEqual([false, false, false, false]);
  });

  it('ffi:fail.* if rc ~= 0: resume hits only (rc is a resume variable), with rc and err', async () => {
    const { id } = await setBp({ url: 'ffi:fail.*', condition: 'rc ~= 0 and res ~= nil', rate: 1e6 });
    const [n] = await runBoth(['/fail?body=boom', '/echo?body=not-this-runtime']) as [number];
    const hs = await hitsAtLeast(id, n);
    await new Promise((r) => setTimeout(r, 300));
    expect(hits(id)).toHaveLength(n);
    for (const h of hs) {
      expect(h.task).toMatchObject({ phase: 'resume', runtime: 'fail', method: 'go', ok: false, rc: 1, err: 'error: boom', res_preview: 'error: boom', res_len: 11 });
      expect(h.locals.body.value).toBe('boom');
    }
    await remove(id);
  });

  it('conditions on res and latency, and a logpoint', async () => {
    const a = await setBp({ url: 'ffi:echo.*', condition: 'res == "pick-me" and latency.total >= 0', rate: 1e6 });
    const b = await setBp({ url: 'ffi:echo.echo', log: '{phase} {runtime}.{method} n={#req} user={user}', rate: 1e6 });
    await runBoth(['/echo?body=pick-me&user=cy', '/echo?body=skip']);
    const ha = await hitsAtLeast(a.id, 2);
    expect(ha.every((h) => h.task.phase === 'resume' && h.task.res_preview === 'pick-me')).toBe(true);
    // each path ran at least twice per worker, some more (8 or more hits): the hits of the
    // second path may still be on their way when 8 of the first are in, so wait for its own
    await hitsAtLeast(b.id, 8);
    await waitFor(() => hits(b.id).some((h) => h.message === 'resume echo.echo n=4 user=anon'), { timeout: 5_000, what: 'the second path\'s resume hit' });
    const hb = hits(b.id);
    const msgs = new Set(hb.map((h) => h.message));
    expect(msgs).toEqual(new Set(['enqueue echo.echo n=7 user=cy', 'resume echo.echo n=7 user=cy', 'enqueue echo.echo n=4 user=anon', 'resume echo.echo n=4 user=anon']));
    expect(hb.every((h) => h.locals === undefined && h.task.runtime === 'echo')).toBe(true);
    await remove(a.id);
    await remove(b.id);
  });

  it('wildcards: ffi:*.* sees every runtime, ffi:slow.* only slow (with its service latency)', async () => {
    const all = await setBp({ url: 'ffi:*.*', rate: 1e6 });
    const slow = await setBp({ url: 'ffi:slow.*', rate: 1e6 });
    const [, , nslow] = await runBoth(['/echo?body=e', '/fail?body=f', '/slow?body=s&ms=20'], 1) as [number, number, number];
    const ha = await hitsAtLeast(all.id, 12);
    expect(new Set(ha.map((h) => `${h.task.runtime}.${h.task.method}`))).toEqual(new Set(['echo.echo', 'fail.go', 'slow.wait']));
    const hs = await hitsAtLeast(slow.id, 2 * nslow);
    await new Promise((r) => setTimeout(r, 300));
    expect(hits(slow.id)).toHaveLength(2 * nslow);
    for (const h of hs) expect(h.task).toMatchObject({ runtime: 'slow', method: 'wait' });
    for (const h of hs.filter((x) => x.task.phase === 'resume')) {
      expect(h.task.res_preview).toBe('s');
      expect(h.task.latency_ms.service).toBeGreaterThanOrEqual(19);
      expect(h.task.latency_ms.total).toBeGreaterThanOrEqual(h.task.latency_ms.service);
    }
    await remove(all.id);
    expect(await hookState()).toEqual([true, true, true, true]); // slow.* still armed
    await remove(slow.id);
    expect(await hookState()).toEqual([false, false, false, false]);
  });

  it('count: exactly N hits per worker, then removed (count) and the hook is nil again', async () => {
    const { id } = await setBp({ url: 'ffi:echo.echo', count: 3, rate: 1e6 });
    await runBoth(['/echo?body=c'], 3);
    await waitFor(() => events('Debugger.removed', id).length === 2, { timeout: 5_000, what: `removed on both; ${JSON.stringify(events('Debugger.removed', id))}` });
    expect(events('Debugger.removed', id).map((e) => e.params.reason)).toEqual(['count', 'count']);
    const byPid = new Map<number, number>();
    for (const h of hits(id)) byPid.set(h.pid, (byPid.get(h.pid) ?? 0) + 1);
    expect([...byPid.values()]).toEqual([3, 3]);
    const list = await Promise.all(clients.map((c) => c.request('Debugger.getBreakpoints')));
    for (const l of list) expect(l.breakpoints).toEqual([]);
    expect(await hookState()).toEqual([false, false, false, false]);
  });

  it('rate: hits past the rate are dropped and reported', async () => {
    const { id } = await setBp({ url: 'ffi:echo.echo', rate: 1 });
    await runBoth(['/echo?body=r'], 5);
    await waitFor(() => events('Debugger.dropped', id).length > 0, { timeout: 5_000, what: 'a dropped report' });
    const list = await Promise.all(clients.map((c) => c.request('Debugger.getBreakpoints')));
    const bps = list.flatMap((l) => l.breakpoints);
    expect(bps.reduce((n, b) => n + b.dropped, 0)).toBeGreaterThan(0);
    expect(bps.reduce((n, b) => n + b.hits, 0)).toBe(hits(id).length + bps.reduce((n, b) => n + b.dropped, 0));
    await remove(id);
  });

  it('timeout removes it', async () => {
    const { id } = await setBp({ url: 'ffi:*.*', timeout_ms: 300 });
    await waitFor(() => events('Debugger.removed', id).length === 2, { timeout: 5_000, what: 'removed (timeout) on both' });
    expect(events('Debugger.removed', id).map((e) => e.params.reason)).toEqual(['timeout', 'timeout']);
    expect(await hookState()).toEqual([false, false, false, false]);
  });

  it.each([
    [{ url: 'ffi:echo' }, /expected ffi:RUNTIME\.METHOD/],
    [{ url: 'ffi:echo.echo', line: 3 }, /takes no line/],
    [{ url: 'ffi:echo.echo', condition: '#req >' }, /condition rejected: syntax error/],
    [{ url: 'ffi:echo.echo', condition: 'os.execute("x")' }, /condition rejected: call to os\.execute is not allowed/],
    [{ url: 'ffi:echo.echo', count: 0 }, /count must be a positive number/],
  ])('rejects %j', async (spec, why) => {
    const err = await clients[0].request('Debugger.setBreakpoint', { spec, id: 999 }).catch((e: AgentError) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(why);
    expect((await clients[0].request('Debugger.getBreakpoints')).breakpoints).toEqual([]);
  });

  it('a runtime error in the condition: reported once, breakpoint removed (error)', async () => {
    const { id } = await setBp({ url: 'ffi:echo.echo', condition: 'req.x.y == 1' });
    await runBoth(['/echo?body=x'], 1);
    await waitFor(() => events('Debugger.removed', id).length === 2, { timeout: 5_000, what: 'removed (error) on both' });
    expect(events('Debugger.error', id)).toHaveLength(2);
    expect(events('Debugger.error', id)[0].params.message).toMatch(/^condition: /);
    expect(events('Debugger.removed', id).map((e) => e.params.reason)).toEqual(['error', 'error']);
  });

  it('session end (probe gone) sets the hook back to nil', async () => {
    await setBp({ url: 'ffi:*.*' });
    expect(await hookState()).toEqual([true, true, true, true]);
    for (const c of clients) c.close();
    const seen = new Map<number, boolean>();
    await waitFor(async () => {
      const r = JSON.parse((await http(nginx().url('/hook'))).body.toString('utf8'));
      seen.set(r.pid, r.hook);
      return nginx().workerPids().every((p) => seen.get(p) === false);
    }, { timeout: 15_000, interval: 50, what: `/hook false on both workers: ${JSON.stringify([...seen])}` });
  });
});

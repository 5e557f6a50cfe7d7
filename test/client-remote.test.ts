// The remote client (client/remote.ts over chrome-remote-interface) against a real `serve` of a
// real nginx: connect() joins it, the store reads through it, every call has a timeout (a
// stopped serve), pending calls are rejected when the client closes or the serve dies, and
// disposers really remove listeners. Against fake endpoints: a connect nobody answers gives up
// and drops its socket, and the close frame's reason becomes the client's end.
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BreakpointEvent } from '../client/client.js';
import { connect } from '../client/connect.js';
import { CdpConnection } from '../client/cri.js';
import { RemoteClient } from '../client/remote.js';
import { HitsView } from '../store/hits.js';
import { BP_CLI_FILE, BP_CLI_HTTP, BREAK_LINE, FIXTURE_LUA } from './harness/bp-cli-app.js';
import { startCli, type RunningCli } from './harness/cli.js';
import { http, useNginx, waitFor } from './harness/nginx.js';

const dir = mkdtempSync(join(tmpdir(), 'nffi-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Stop `child` for the length of `fn` (well under the agents' 5 s heartbeat). */
async function stopped<T>(child: RunningCli['child'], fn: () => Promise<T>): Promise<T> {
  child.kill('SIGSTOP');
  try {
    return await fn();
  } finally {
    child.kill('SIGCONT');
  }
}

describe('the remote client against a real serve', () => {
  const nginx = useNginx({ workers: 2, http: BP_CLI_HTTP, luaPath: [FIXTURE_LUA] });
  let serve: RunningCli;

  beforeAll(async () => {
    serve = startCli(['serve', String(nginx().masterPid)]);
    await waitFor(() => /^serving \d+ /m.test(serve.out()), { timeout: 10_000, what: `serve; ${serve.out()} ${serve.err()}` });
  });
  afterAll(async () => {
    if (serve.child.exitCode === null && serve.child.signalCode === null) {
      serve.child.kill('SIGINT');
      await serve.exited;
    }
  });

  it('connect() joins it; the workers, their coroutines and a breakpoint\'s hits come through it', async () => {
    const c = await connect(nginx().masterPid);
    try {
      expect(c.kind).toBe(`serve probe ${serve.child.pid}`);
      const pids = nginx().workerPids().sort((a, b) => a - b);
      expect((await c.targets()).filter((t) => t.attached).map((t) => t.pid).sort((a, b) => a - b)).toEqual(pids);
      const all = await c.callAll('Lua.getCoroutines', { frames: 1 });
      expect(all.map((r) => [r.pid, r.error, Array.isArray(r.result?.coroutines)])).toEqual(pids.map((p) => [p, undefined, true]));

      const hits = new HitsView(c);
      const seen: BreakpointEvent[] = [];
      const bp = await hits.set({ url: BP_CLI_FILE, line: BREAK_LINE, timeout_ms: 30_000 }, (e) => seen.push(e));
      expect(bp.unreached).toEqual([]);
      await waitFor(async () => {
        await http(nginx().url('/work?n=1&user=x'));
        return hits.get(bp.id)!.hits >= 2;
      }, { timeout: 10_000, interval: 20, what: `hits; ${JSON.stringify(hits.get(bp.id))}` });
      expect(seen.filter((e) => e.event === 'hit').every((e) => e.id === bp.id)).toBe(true);
      expect((await c.listBreakpoints()).map((b) => b.id)).toEqual([bp.id]);
      expect(await c.removeBreakpoint(bp.id)).toBe(true);
      expect(await hits.ended(bp.id)).toBe('deleted');
      expect(await c.removeBreakpoint(bp.id)).toBe(false);
      hits.dispose();
    } finally {
      await c.close();
    }
  });

  it('a worker pid held by the master\'s serve: that worker only, and breakpoints left to the master', async () => {
    const [w] = nginx().workerPids();
    const c = await connect(w!);
    try {
      expect((await c.targets()).map((t) => t.pid)).toEqual([w]);
      expect((await c.callAll('FFI.getRuntimes')).map((r) => r.pid)).toEqual([w]);
      await expect(c.setBreakpoint({ url: BP_CLI_FILE, line: BREAK_LINE })).rejects.toThrow(`set the breakpoint on ${nginx().masterPid}`);
    } finally {
      await c.close();
    }
  });

  it('every call has a timeout: a stopped serve does not keep the caller waiting', async () => {
    const c = await connect(nginx().masterPid, { timeoutMs: 300 });
    try {
      await stopped(serve.child, async () => {
        const t0 = Date.now();
        await expect(c.targets()).rejects.toThrow(`Target.getTargets: serve probe ${serve.child.pid} did not answer within 300 ms`);
        expect(Date.now() - t0).toBeLessThan(2_000);
      });
      // and the connection still serves once it answers again
      await waitFor(async () => (await c.targets()).length === 2, { timeout: 5_000, what: 'targets after SIGCONT' });
    } finally {
      await c.close();
    }
  });

  it('closing rejects every pending call at once, not at its timeout', async () => {
    const c = await connect(nginx().masterPid, { timeoutMs: 20_000 });
    await stopped(serve.child, async () => {
      const settled = Promise.allSettled([c.targets(), c.callAll('Agent.getStats'), c.listBreakpoints()]);
      const t0 = Date.now();
      await c.close();
      const results = await settled;
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(results.map((r) => r.status === 'rejected' && String(r.reason.message))).toEqual([
        expect.stringMatching(/^Target\.getTargets: serve probe \d+ closed the connection$/),
        expect.stringMatching(/^Target\.getTargets: serve probe \d+ closed the connection$/),
        expect.stringMatching(/^Debugger\.getBreakpoints: serve probe \d+ closed the connection$/),
      ]);
    });
  });

  it('disposers really remove listeners: a disposed one hears nothing more', async () => {
    const c = (await connect(nginx().masterPid)) as RemoteClient;
    try {
      const before = c.listenerCounts;
      const a: string[] = [];
      const b: string[] = [];
      const offs = [c.onBreakpoint((e) => a.push(e.event)), c.onTarget(() => a.push('target')), c.onEnd(() => a.push('end'))];
      const keep = c.onBreakpoint((e) => b.push(e.event));
      expect(c.listenerCounts).toEqual({ ...before, target: before.target + 1, breakpoint: before.breakpoint + 2, end: before.end + 1 });
      for (const off of offs) off();
      offs[0]!();
      expect(c.listenerCounts).toEqual({ ...before, breakpoint: before.breakpoint + 1 });
      const bp = await c.setBreakpoint({ url: BP_CLI_FILE, line: BREAK_LINE });
      await waitFor(() => b.includes('armed'), { timeout: 5_000, what: `armed; ${b}` });
      await c.removeBreakpoint(bp.id);
      await waitFor(() => b.includes('ended'), { timeout: 5_000, what: `ended; ${b}` });
      expect(a).toEqual([]);
      keep();
      expect(c.listenerCounts).toEqual(before);
    } finally {
      await c.close();
    }
  });

  it('a serve that dies: pending calls rejected, the client ends ("serve probe gone"), the store\'s breakpoints with it', async () => {
    const c = await connect(nginx().masterPid, { timeoutMs: 20_000 });
    const hits = new HitsView(c);
    const bp = await hits.set({ url: BP_CLI_FILE, line: BREAK_LINE });
    const ended = new Promise<string>((resolve) => c.onEnd(resolve));
    const pending = stopped(serve.child, async () => {
      const p = c.targets();
      serve.child.kill('SIGKILL');
      return p;
    });
    await expect(pending).rejects.toThrow(/closed the connection/);
    expect(await ended).toBe('serve probe gone');
    expect(await hits.ended(bp.id)).toBe('serve probe gone');
    await expect(c.callAll('Lua.getCoroutines')).rejects.toThrow(/closed the connection/);
    await c.close();
  });
});

describe('the remote client against fake endpoints', () => {
  it('a connect that gets no answer gives up after its timeout and drops the socket', async () => {
    const sock = join(dir, 'mute.sock');
    const conns: Socket[] = [];
    const server = createServer((s) => {
      conns.push(s);
      s.resume(); // read, so the end of the other side is seen
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const t0 = Date.now();
      await expect(CdpConnection.open(`ws+unix:${sock}:/devtools/browser`, { label: 'mute', timeoutMs: 200 }))
        .rejects.toThrow('mute did not answer within 200 ms');
      expect(Date.now() - t0).toBeLessThan(1_500);
      await waitFor(() => conns.length === 1 && conns[0]!.destroyed, { timeout: 2_000, what: `the half-open socket dropped; ${conns.length} ${conns.map((c) => c.destroyed)}` });
    } finally {
      for (const s of conns) s.destroy();
      server.close();
    }
  });

  it.each([
    ['nginx master 4242 exited', 'nginx master 4242 exited'],
    ['probe exiting', 'serve probe gone'],
  ])('a close frame saying "%s" ends the client with "%s"', async (said, reason) => {
    const sock = join(dir, `fake-${reason.length}.sock`);
    const wss = new WebSocketServer({ noServer: true });
    const server = createHttpServer();
    const seen: string[] = [];
    server.on('upgrade', (req, socket, head) => {
      seen.push(`${req.headers.host} ${req.url}`);
      wss.handleUpgrade(req, socket, head, (ws) => setTimeout(() => ws.close(1001, said), 50));
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const c = await RemoteClient.open({ probe_pid: 1, pid: 4242, workers: [], socket: sock, token: 'ab/c' }, 4242);
      const ended = await new Promise<string>((resolve) => c.onEnd(resolve));
      expect(ended).toBe(reason);
      // said again to a listener that comes late
      expect(await new Promise<string>((resolve) => c.onEnd(resolve))).toBe(reason);
      expect(seen).toEqual(['localhost /devtools/browser?token=ab%2Fc']);
      await c.close();
    } finally {
      wss.close();
      server.close();
    }
  });
});

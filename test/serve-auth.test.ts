// Who can talk to `nffi-inspect serve` (issue 11, hole 1): a hostile local user or a web page
// must get nothing. On TCP every HTTP path and WebSocket upgrade needs the token, a Host that
// names the endpoint and no foreign Origin; the default endpoint is a unix socket in a 0700
// dir; a second unix user (nffi-hostile) can neither open that socket, nor read the token, nor
// get past the TCP endpoint without it; the CLI's own clients say so in one line.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { afterAll, describe, expect, it } from 'vitest';
import { serveDir } from '../probe/registry.js';
import { BIN, oneLineError, runCli, type RunningCli } from './harness/cli.js';
import { useNginx, waitFor } from './harness/nginx.js';
import { PARK_HTTP } from './harness/probe-app.js';

const HOSTILE = 'nffi-hostile';
const TOKEN_RE = /^[0-9a-f]{64}$/;

interface Endpoint { port?: number; socket?: string }
interface Reply { status: number; body: string; headers: Record<string, unknown> }

function raw(to: Endpoint, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const where = to.socket ? { socketPath: to.socket } : { host: '127.0.0.1', port: to.port };
  return new Promise((resolve, reject) => {
    const req = request({ ...where, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

function wsUrl(to: Endpoint, path: string): string {
  return to.socket ? `ws+unix:${to.socket}:${path}` : `ws://127.0.0.1:${to.port}${path}`;
}

/** The status of a WebSocket upgrade (101 when it opened); with `call`, its answer too. */
function upgrade(url: string, headers: Record<string, string> = {}, call?: string): Promise<{ status: number; answer?: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: 5_000 });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.on('open', () => {
      if (!call) {
        resolve({ status: 101 });
        return ws.close();
      }
      ws.send(JSON.stringify({ id: 1, method: call }));
      ws.once('message', (data) => {
        resolve({ status: 101, answer: JSON.parse(String(data)) });
        ws.close();
      });
    });
    ws.on('error', reject);
  });
}

/** Create the hostile user once (tests run as root); idempotent. */
function hostileUser(): void {
  if (spawnSync('id', ['-u', HOSTILE]).status === 0) return;
  const r = spawnSync('useradd', ['-M', '-s', '/usr/sbin/nologin', HOSTILE], { encoding: 'utf8' });
  // 9: created meanwhile by a parallel run
  if (r.status !== 0 && r.status !== 9) throw new Error(`useradd ${HOSTILE}: ${r.stderr}`);
}

/** Run `script` (an ES module body printing one JSON line) with node as the hostile user. */
function asHostile(script: string): any {
  hostileUser();
  const out = execFileSync('runuser', ['-u', HOSTILE, '--', process.execPath, '--input-type=module', '-e', script],
    { cwd: '/', encoding: 'utf8', timeout: 15_000 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** Inodes of the TCP sockets `pid` listens on. */
function tcpListening(pid: number): string[] {
  const mine = new Set(readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
    } catch {
      return undefined;
    }
  }).filter(Boolean));
  const rows = ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((f) => readFileSync(f, 'utf8').split('\n').slice(1));
  // columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode
  return rows.map((r) => r.trim().split(/\s+/)).filter((c) => c[3] === '0A' && mine.has(c[9])).map((c) => c[9]!);
}

/** A serve that lives across the tests of a describe block (startCli's are stopped after each). */
function startServe(args: string[]): RunningCli {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, out: () => out, err: () => err, exited, lines: () => [] };
}

describe('serve: who gets in', () => {
  const nginx = useNginx({ workers: 1, http: PARK_HTTP });
  const worker = (): number => nginx().workerPids()[0]!;
  const alive: RunningCli[] = [];
  afterAll(() => {
    for (const s of alive) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGINT');
  });

  async function stop(serve: RunningCli): Promise<void> {
    serve.child.kill('SIGINT');
    expect(await serve.exited).toBe(0);
  }

  it('--host takes an IP address (a name could be rebound), --port a port: exit 2, one line', async () => {
    for (const [args, line] of [
      [['--host', 'attacker.example'], "invalid --host 'attacker.example' (an IP address, or localhost)"],
      [['--port', '70000'], "invalid --port '70000' (0 to 65535)"],
    ] as const) {
      const r = await runCli(['serve', String(nginx().masterPid), ...args]);
      expect({ status: r.status, line: oneLineError(r) }).toEqual({ status: 2, line: `nffi-inspect: ${line}` });
    }
  });

  describe('TCP (--port 0 --allow-origin http://ok.example)', () => {
    let serve: RunningCli;
    let port = 0;
    let token = '';
    const to = (): Endpoint => ({ port });
    const bearer = (): Record<string, string> => ({ Authorization: `Bearer ${token}` });
    const paths = (): [string, string][] => [
      ['GET', '/json'], ['GET', '/json/list'], ['GET', '/json/version'], ['GET', '/json/protocol'],
      ['GET', '/json/breakpoints'], ['DELETE', '/json/breakpoints/1'], ['GET', `/json/close/${worker()}`],
      ['GET', '/no/such/path'],
    ];
    const sockets = (): string[] => ['/devtools/browser', `/devtools/worker/${worker()}`, '/devtools/worker/4194999'];

    it('prints the token once in its URL; the registry entry (0600, root\'s dir) holds it', async () => {
      serve = startServe([String(nginx().masterPid), '--port', '0', '--allow-origin', 'http://ok.example']);
      alive.push(serve);
      const m = await waitFor(() => /^serving \d+ \(workers [\d, ]+\) on http:\/\/127\.0\.0\.1:(\d+)\/json\/list\?token=([0-9a-f]+)$/m.exec(serve.out()),
        { timeout: 8_000, what: `serve URL; out: ${serve.out()} err: ${serve.err()}` });
      [port, token] = [Number(m[1]), m[2]!];
      expect(token).toMatch(TOKEN_RE);
      expect(serve.out().split(token).length).toBe(2);
      const entry = `${serveDir()}/serve-${serve.child.pid}.json`;
      expect(statSync(entry).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(entry, 'utf8'))).toMatchObject({ host: '127.0.0.1', port, token, pid: nginx().masterPid });
    });

    it('no token, a wrong token, or a wrong scheme: 401 and nothing else, on every path', async () => {
      const wrong = randomBytes(32).toString('hex');
      const tries: [string, Record<string, string>, string][] = [
        ['none', {}, ''], ['wrong bearer', { Authorization: `Bearer ${wrong}` }, ''], ['wrong query', {}, `?token=${wrong}`],
        ['short', { Authorization: 'Bearer x' }, ''], ['prefix', {}, `?token=${token.slice(0, 63)}`],
        ['basic', { Authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` }, ''],
      ];
      for (const [method, path] of paths()) {
        for (const [what, headers, query] of tries) {
          const r = await raw(to(), method, path + query, headers);
          expect({ what, method, path, status: r.status, body: r.body }).toEqual({ what, method, path, status: 401, body: '401 Unauthorized\n' });
        }
      }
      for (const path of sockets()) {
        for (const [what, headers, query] of tries) {
          expect({ what, path, ...(await upgrade(wsUrl(to(), path + query), headers)) }).toEqual({ what, path, status: 401 });
        }
      }
      // /json/close without the token detached nothing
      const list = await raw(to(), 'GET', '/json/list', bearer());
      expect(JSON.parse(list.body).map((t: any) => Number(t.id))).toEqual([worker()]);
    });

    it('the token (header or ?token=) lets in, on HTTP and WebSocket', async () => {
      for (const [method, path] of paths().filter(([m, p]) => m === 'GET' && /^\/json(\/(list|version|protocol|breakpoints))?$/.test(p))) {
        expect((await raw(to(), method, path, bearer())).status).toBe(200);
        expect((await raw(to(), method, `${path}?token=${token}`)).status).toBe(200);
      }
      const list = JSON.parse((await raw(to(), 'GET', '/json/list', bearer())).body);
      expect(list[0].webSocketDebuggerUrl).toBe(`ws://127.0.0.1:${port}/devtools/worker/${worker()}?token=${token}`);
      const viaUrl = await upgrade(list[0].webSocketDebuggerUrl, {}, 'Target.getTargets');
      expect(viaUrl.answer.result.targets.map((t: any) => t.pid)).toEqual([worker()]);
      const viaHeader = await upgrade(wsUrl(to(), '/devtools/browser'), bearer(), 'Target.getTargets');
      expect(viaHeader.answer.result.targets.map((t: any) => t.pid)).toEqual([worker()]);
      expect((await upgrade(wsUrl(to(), '/devtools/worker/4194999'), bearer())).status).toBe(404);
    });

    it('a Host that is not the listen address (DNS rebinding) or a foreign Origin: 403, even with the token', async () => {
      const refusedHosts = ['attacker.example', `attacker.example:${port}`, `127.0.0.1:${port + 1}`, '127.0.0.1', `localhost.attacker.example:${port}`, `127.0.0.2:${port}`];
      for (const Host of refusedHosts) {
        for (const [method, path] of paths()) {
          const r = await raw(to(), method, `${path}?token=${token}`, { ...bearer(), Host });
          expect({ Host, path, status: r.status, body: r.body }).toEqual({ Host, path, status: 403, body: '403 Forbidden\n' });
        }
        for (const path of sockets()) expect({ Host, path, ...(await upgrade(wsUrl(to(), path), { ...bearer(), Host })) }).toEqual({ Host, path, status: 403 });
      }
      for (const Origin of ['http://attacker.example', 'null', `http://127.0.0.1:${port}`, 'http://ok.example.attacker.example']) {
        expect((await raw(to(), 'GET', '/json/list', { ...bearer(), Origin })).status).toBe(403);
        expect((await upgrade(wsUrl(to(), '/devtools/browser'), { ...bearer(), Origin })).status).toBe(403);
      }
      for (const Host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
        expect({ Host, status: (await raw(to(), 'GET', '/json/version', { ...bearer(), Host })).status }).toEqual({ Host, status: 200 });
      }
      expect((await raw(to(), 'GET', '/json/list', { ...bearer(), Origin: 'http://ok.example' })).status).toBe(200);
      expect((await upgrade(wsUrl(to(), '/devtools/browser'), { ...bearer(), Origin: 'http://ok.example' })).status).toBe(101);
    });

    it(`another unix user (${HOSTILE}): refused without the token, cannot read it, cannot detach`, async () => {
      const entry = `${serveDir()}/serve-${serve.child.pid}.json`;
      const seen = asHostile(`
        import { request } from 'node:http';
        import { readFileSync, readdirSync } from 'node:fs';
        const get = (path) => new Promise((resolve) => {
          const req = request({ host: '127.0.0.1', port: ${port}, path }, (res) => { res.resume(); resolve(res.statusCode); });
          req.on('error', (e) => resolve(e.code));
          req.end();
        });
        const code = (f) => { try { f(); return 'read'; } catch (e) { return e.code; } };
        console.log(JSON.stringify({
          list: await get('/json/list'),
          close: await get('/json/close/${worker()}'),
          guessed: await get('/json/list?token=${'0'.repeat(64)}'),
          entry: code(() => readFileSync(${JSON.stringify(entry)})),
          dir: code(() => readdirSync(${JSON.stringify(serveDir())})),
          uid: process.getuid(),
        }));
      `);
      expect(seen.uid).not.toBe(0);
      expect(seen).toMatchObject({ list: 401, close: 401, guessed: 401, entry: 'EACCES', dir: 'EACCES' });
      const cli = await runCli(['detach', String(worker())], { user: HOSTILE });
      expect(cli.stdout).toBe(`${worker()}: not attached\n`);
      const bps = await runCli(['breakpoints', String(nginx().masterPid), '--json'], { user: HOSTILE });
      expect(JSON.parse(bps.stdout).serve).toBe(null);
      const list = await raw(to(), 'GET', '/json/list', bearer());
      expect(JSON.parse(list.body).map((t: any) => Number(t.id))).toEqual([worker()]);
      await stop(serve);
    });
  });

  describe('the default endpoint: a unix socket only its owner can open', () => {
    let serve: RunningCli;
    let socket = '';
    let entry = '';
    let token = '';
    const to = (): Endpoint => ({ socket });

    it('lives in a 0700 dir owned by the user running serve, socket and entry 0600; no TCP port', async () => {
      // what a serve killed with -9 left behind (no such pid) is swept at start
      const dead = ['json', 'sock'].map((ext) => `${serveDir()}/serve-4194300.${ext}`);
      if (existsSync(serveDir())) for (const f of dead) writeFileSync(f, '{}', { mode: 0o600 });
      serve = startServe([String(nginx().masterPid)]);
      alive.push(serve);
      const m = await waitFor(() => /^serving \d+ \(workers [\d, ]+\) on unix:(\S+) \(token in (\S+)\)$/m.exec(serve.out()),
        { timeout: 8_000, what: `serve line; out: ${serve.out()} err: ${serve.err()}` });
      [socket, entry] = [m[1]!, m[2]!];
      const euid = process.geteuid!();
      expect(socket).toBe(`${serveDir()}/serve-${serve.child.pid}.sock`);
      expect(serveDir()).toBe(`/tmp/nffi-inspect.${euid}`);
      const dir = lstatSync(serveDir());
      expect({ dir: dir.isDirectory(), uid: dir.uid, mode: (dir.mode & 0o777).toString(8) }).toEqual({ dir: true, uid: euid, mode: '700' });
      const sock = lstatSync(socket);
      expect({ socket: sock.isSocket(), uid: sock.uid, mode: (sock.mode & 0o777).toString(8) }).toEqual({ socket: true, uid: euid, mode: '600' });
      const file = lstatSync(entry);
      expect({ file: file.isFile(), uid: file.uid, mode: (file.mode & 0o777).toString(8) }).toEqual({ file: true, uid: euid, mode: '600' });
      const e = JSON.parse(readFileSync(entry, 'utf8'));
      expect(e).toMatchObject({ probe_pid: serve.child.pid, socket, workers: [worker()] });
      expect(e.port).toBeUndefined();
      token = e.token;
      expect(token).toMatch(TOKEN_RE);
      expect(serve.out()).not.toContain(token);
      expect(tcpListening(serve.child.pid!)).toEqual([]);
      expect(dead.filter((f) => existsSync(f))).toEqual([]);
    });

    it('needs the token and a local Host there too', async () => {
      for (const path of ['/json/list', '/json/version', `/json/close/${worker()}`]) {
        expect(await raw(to(), 'GET', path)).toMatchObject({ status: 401, body: '401 Unauthorized\n' });
        expect(await raw(to(), 'GET', path, { Authorization: `Bearer ${token}`, Host: 'attacker.example' })).toMatchObject({ status: 403 });
      }
      expect((await upgrade(wsUrl(to(), '/devtools/browser'))).status).toBe(401);
      expect((await upgrade(wsUrl(to(), '/devtools/browser'), { Origin: 'http://attacker.example', Authorization: `Bearer ${token}` })).status).toBe(403);
      expect((await raw(to(), 'GET', '/json/list', { Authorization: `Bearer ${token}` })).status).toBe(200);
      const browser = await upgrade(wsUrl(to(), `/devtools/browser?token=${token}`), {}, 'Target.getTargets');
      expect(browser.answer.result.targets.map((t: any) => t.pid)).toEqual([worker()]);
    });

    it('the CLI joins it as its owner: breakpoints, delete; ps shows the worker held', async () => {
      const bps = await runCli(['breakpoints', String(nginx().masterPid), '--json']);
      expect(bps.stderr).toBe('');
      expect(JSON.parse(bps.stdout)).toEqual({ pid: nginx().masterPid, serve: serve.child.pid, breakpoints: [] });
      const del = await runCli(['delete', String(nginx().masterPid), '3']);
      expect(oneLineError(del)).toBe(`nffi-inspect: no breakpoint 3 in serve probe ${serve.child.pid}`);
      const ps = JSON.parse((await runCli(['ps', String(nginx().masterPid), '--json'])).stdout);
      expect(ps.masters[0].workers.map((w: any) => w.agent)).toEqual([`attached (serve ${serve.child.pid})`]);
    });

    it('a wrong token in the entry: one line, exit 1, from every command that joins a serve', async () => {
      const good = readFileSync(entry, 'utf8');
      writeFileSync(entry, JSON.stringify({ ...JSON.parse(good), token: '0'.repeat(64) }));
      try {
        for (const args of [['breakpoints', String(nginx().masterPid)], ['delete', String(nginx().masterPid), '1'],
          ['detach', String(worker())], ['breakpoint', String(nginx().masterPid), 'x.lua:1']]) {
          const r = await runCli(args);
          expect({ args, status: r.status, line: oneLineError(r) }).toEqual({
            args, status: 1,
            line: `nffi-inspect: serve probe ${serve.child.pid} refused the token from its registry entry (HTTP 401): restart serve, or remove a stale serve-${serve.child.pid}.json`,
          });
        }
      } finally {
        writeFileSync(entry, good);
      }
      expect(JSON.parse((await runCli(['breakpoints', String(nginx().masterPid), '--json'])).stdout).serve).toBe(serve.child.pid);
    });

    it(`another unix user (${HOSTILE}) cannot connect to the socket nor read the entry`, async () => {
      const seen = asHostile(`
        import { connect } from 'node:net';
        import { readFileSync } from 'node:fs';
        const open = () => new Promise((resolve) => {
          const s = connect(${JSON.stringify(socket)});
          s.on('connect', () => { s.destroy(); resolve('connected'); });
          s.on('error', (e) => resolve(e.code));
        });
        const code = (f) => { try { f(); return 'read'; } catch (e) { return e.code; } };
        console.log(JSON.stringify({ socket: await open(), entry: code(() => readFileSync(${JSON.stringify(entry)})) }));
      `);
      expect(seen).toEqual({ socket: 'EACCES', entry: 'EACCES' });
      const cli = await runCli(['detach', String(worker())], { user: HOSTILE });
      expect(cli.stdout).toBe(`${worker()}: not attached\n`);
      expect(JSON.parse((await raw(to(), 'GET', '/json/list', { Authorization: `Bearer ${token}` })).body)).toHaveLength(1);
    });

    it('Ctrl-C removes the socket and the entry', async () => {
      await stop(serve);
      expect(readdirSync(serveDir()).filter((n) => n.startsWith(`serve-${serve.child.pid}.`))).toEqual([]);
    });
  });
});

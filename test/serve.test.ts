// `nffi-inspect serve --port 0`: the CDP-style endpoint on TCP with its token, driven by
// chrome-remote-interface with our descriptor, shared with `detach`, following a reload on
// the browser socket. (Who gets in, and the default unix socket: serve-auth.test.ts.)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import CDP from 'chrome-remote-interface';
import { afterAll, describe, expect, it } from 'vitest';
import { serveDir } from '../probe/registry.js';
import { BIN, ROOT, runCli } from './harness/cli.js';
import { http, useNginx, waitFor } from './harness/nginx.js';
import { PARK_HTTP } from './harness/probe-app.js';

const protocol = JSON.parse(readFileSync(`${ROOT}/probe/protocol.json`, 'utf8'));

let token = '';

async function getJson(port: number, path: string): Promise<any> {
  const r = await http(`http://127.0.0.1:${port}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  return JSON.parse(r.body.toString());
}

describe('serve', () => {
  const nginx = useNginx({ workers: 2, http: PARK_HTTP });
  let serve: ChildProcess | undefined;
  let out = '';
  afterAll(() => {
    serve?.kill('SIGINT');
  });

  async function start(): Promise<number> {
    serve = spawn(process.execPath, [BIN, 'serve', String(nginx().masterPid), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    serve.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    serve.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const m = await waitFor(() => /http:\/\/127\.0\.0\.1:(\d+)\/json\/list\?token=([0-9a-f]{64})$/m.exec(out), { timeout: 8_000, what: `serve to print its URL; output: ${out}` });
    token = m[2]!;
    return Number(m[1]);
  }

  it('serves /json/version and /json/list, and Lua.getCoroutines and Agent.getStats (no other Agent method) on a worker target', async () => {
    const port = await start();
    expect((await getJson(port, '/json/version'))['Protocol-Version']).toBe('0.1');
    const list = await getJson(port, '/json/list');
    expect(list.map((t: any) => Number(t.id)).sort()).toEqual(nginx().workerPids().sort());
    expect(list[0].webSocketDebuggerUrl).toBe(`ws://127.0.0.1:${port}/devtools/worker/${list[0].id}?token=${token}`);

    const client = await CDP({ target: list[0].webSocketDebuggerUrl, protocol, local: true });
    try {
      const res = await client.Lua.getCoroutines({ frames: 2 });
      expect(Array.isArray(res.coroutines)).toBe(true);
      // of Agent, only the read-only getStats reaches the agent; detach is the probe's
      expect((await client.Agent.getStats()).breakpoints).toMatchObject({ mode: { mode: expect.any(String) } });
      await expect(client.send('Agent.detach')).rejects.toThrow(/wasn't found/);
      await expect(client.send('Agent.ping')).rejects.toThrow(/wasn't found/);
    } finally {
      await client.close();
    }
  });

  it('the browser socket lists targets and announces the workers of a reload', async () => {
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const browser = await CDP({ target: `ws://127.0.0.1:${port}/devtools/browser?token=${token}`, protocol, local: true });
    try {
      const { targets } = await browser.Target.getTargets();
      expect(targets.filter((t: any) => t.attached)).toHaveLength(2);
      const attached: number[] = [];
      browser.on('Target.attachedToTarget', (p: any) => attached.push(p.target.pid));
      await nginx().reload();
      const after = nginx().workerPids();
      await waitFor(() => after.every((p) => attached.includes(p)), { timeout: 5_000, what: `attachedToTarget for ${after}; got ${attached}` });
    } finally {
      await browser.close();
    }
  });

  it('detach PID reaches the serve probe through its registry file', async () => {
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const [first] = nginx().workerPids();
    const r = await runCli(['detach', String(first)]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^detached worker ${first} \\(serve probe \\d+\\)`));
    await waitFor(async () => !(await getJson(port, '/json/list')).some((t: any) => Number(t.id) === first),
      { timeout: 3_000, what: `worker ${first} gone from /json/list` });
    expect((await runCli(['detach', String(first)])).stdout).toBe(`${first}: not attached\n`);
  });

  it('exits 0 on Ctrl-C and removes its registry file (in its own user\'s private dir)', async () => {
    const probePid = serve!.pid;
    const exited = new Promise<number | null>((r) => serve!.on('close', r));
    serve!.kill('SIGINT');
    expect(await exited).toBe(0);
    serve = undefined;
    for (const dir of [serveDir(), '/tmp/nffi-inspect.65534']) {
      expect(existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith(`serve-${probePid}.`)) : []).toEqual([]);
    }
  });
});


// The attach handshake against a stand-in agent that follows the wire spec (no nginx): run
// dir rules, attach file, token check, timeout message, clean-up. (A run dir under attack by
// its owner while root attaches: test/run-dir-safety.test.ts.)
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { attachWorker } from '../probe/attach.js';
import { ProbeError } from '../probe/errors.js';
import type { NginxProc } from '../probe/procs.js';
import { FakeAgent } from './harness/fake-agent.js';

const me: NginxProc = {
  pid: process.pid, ppid: process.ppid, uid: process.getuid!(), gid: process.getgid!(), user: 'me',
  role: 'worker', shuttingDown: false, title: 'nginx: worker process',
};

let base = '';
const agents: FakeAgent[] = [];
afterEach(() => {
  agents.splice(0).forEach((a) => a.stop());
  if (base) rmSync(base, { recursive: true, force: true });
});

function runDir(): string {
  base = mkdtempSync(join(tmpdir(), 'nffi-attach-'));
  return join(base, 'run');
}

function agent(o: Partial<ConstructorParameters<typeof FakeAgent>[0]> & { runDir: string }): FakeAgent {
  const a = new FakeAgent({ pid: process.pid, ...o });
  agents.push(a);
  return a;
}

describe('attachWorker', () => {
  it('creates the run dir 0700, hands the agent a token, and leaves no file behind', async () => {
    const dir = runDir();
    agent({ runDir: dir, handlers: { 'Lua.getCoroutines': () => ({ coroutines: [] }) } });
    const link = await attachWorker(me, { runDir: dir });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(link.hello.versions.agent).toBe('fake');
    await expect(link.request('Lua.getCoroutines')).resolves.toEqual({ coroutines: [] });
    expect(readdirSync(dir)).toEqual([]);
    await link.detach();
  });

  it('ignores a connection with the wrong token and reports the missing agent', async () => {
    const dir = runDir();
    agent({ runDir: dir, token: 'f'.repeat(32) });
    const err = await attachWorker(me, { runDir: dir, helloTimeoutMs: 400 }).catch((e) => e);
    expect(err).toBeInstanceOf(ProbeError);
    expect(err.message).toContain(`worker ${process.pid} has no agent`);
    expect(err.message).toContain('init_worker_by_lua_block { require("nffi.inspect").start() }');
    expect(err.message).toContain('lua_package_path');
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    ['group/other bits', (dir: string) => { mkdirSync(dir); chmodSync(dir, 0o750); }, /mode 750/],
    ['a symlink', (dir: string) => { mkdirSync(`${dir}.real`, { mode: 0o700 }); symlinkSync(`${dir}.real`, dir); }, /symlink/],
    ['a FIFO (refused, never opened)', (dir: string) => { execFileSync('mkfifo', [dir]); }, /not a directory/],
  ])('refuses a run dir with %s', async (_name, make, message) => {
    const dir = runDir();
    make(dir);
    await expect(attachWorker(me, { runDir: dir, helloTimeoutMs: 100 })).rejects.toThrow(message);
  });

  it('refuses a worker of another user unless root', async () => {
    const other = { ...me, uid: me.uid + 1, user: 'someone' };
    if (me.uid === 0) return; // root may attach to anyone; the e2e test covers the refusal
    await expect(attachWorker(other)).rejects.toThrow(/permission denied: attaching to worker \d+ \(user someone\) needs root or someone/);
  });

  it('replaces a link planted at <pid>.attach without following it', async () => {
    const dir = runDir();
    mkdirSync(dir, { mode: 0o700 });
    const outside = join(base, 'outside.json');
    const text = JSON.stringify({ socket: '/nonexistent.sock', token: 'x' }) + '\n';
    writeFileSync(outside, text, { mode: 0o644 });
    const before = statSync(outside);
    symlinkSync(outside, join(dir, `${process.pid}.attach`));
    agent({ runDir: dir });
    const link = await attachWorker(me, { runDir: dir });
    await link.detach();
    const after = statSync(outside);
    expect(readFileSync(outside, 'utf8')).toBe(text);
    expect([after.mode, after.uid, after.ctimeMs]).toEqual([before.mode, before.uid, before.ctimeMs]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('removes the socket dirs of probes killed mid-attach, and only those', async () => {
    const dir = runDir();
    mkdirSync(dir, { mode: 0o700 });
    const dead = join(dir, 'probe-4194303-deadbeef');
    const live = join(dir, `probe-${process.ppid}-0badcafe`);
    for (const d of [dead, live]) {
      mkdirSync(d);
      writeFileSync(join(d, 'sock'), '');
    }
    await expect(attachWorker(me, { runDir: dir, helloTimeoutMs: 100 })).rejects.toThrow(/has no agent/);
    expect(readdirSync(dir)).toEqual([`probe-${process.ppid}-0badcafe`]);
  });

  it('cleans the socket up when nobody answers', async () => {
    const dir = runDir();
    await expect(attachWorker(me, { runDir: dir, helloTimeoutMs: 100 })).rejects.toThrow(/has no agent/);
    expect(existsSync(dir) && readdirSync(dir)).toEqual([]);
  });
});

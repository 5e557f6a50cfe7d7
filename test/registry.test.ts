// serve's registry entries left behind (issue 11, hole 8): a serve killed with -9 leaves
// serve-<pid>.json behind; an entry whose probe is gone, whose pid a later process has taken, or
// whose endpoint nothing listens on is never answered from, and the gone ones are removed from
// our own dir. Reading other users' dirs (ps as root) follows no link and blocks on no FIFO.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lchownSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  entryPath, entryState, listening, readEntries, readOwnEntries, socketPath, startTime, sweepDead, writeEntry,
  type ServeEntry,
} from '../probe/registry.js';
import { nobodyUser } from './harness/hostile.js';

let dir = '';
const servers: Server[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nffi-registry-'));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

function listen(where: string | 0): Promise<Server> {
  const s = createServer();
  servers.push(s);
  return new Promise((resolve) => (where === 0 ? s.listen(0, '127.0.0.1', () => resolve(s)) : s.listen(where, () => resolve(s))));
}

/** A pid that just exited (not reused yet, in all likelihood). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(r.stdout.toString().trim());
}

const entry = (probePid: number, more: Partial<ServeEntry> = {}): ServeEntry => ({
  probe_pid: probePid, pid: 1, workers: [2, 3], token: 'ab'.repeat(32), socket: socketPath(dir, probePid), ...more,
});

/** An entry written as an old serve (or a forger) would: as given, 0600. */
function plant(e: ServeEntry): string {
  const path = entryPath(dir, e.probe_pid);
  writeFileSync(path, JSON.stringify(e) + '\n', { mode: 0o600 });
  return path;
}

describe('stale serve entries', () => {
  it('writeEntry records the probe start time; a live serve listening on its socket is answered from', async () => {
    await listen(socketPath(dir));
    writeEntry(dir, entry(process.pid));
    const [e] = readOwnEntries(dir);
    expect(e).toMatchObject({ probe_pid: process.pid, probe_start: startTime(process.pid) });
    expect(entryState(e!)).toBe('live');
  });

  it.each([
    ['its probe is gone (killed with -9)', () => entry(deadPid())],
    ['a later process has its pid (another start time)', () => entry(process.ppid, { probe_start: '1' })],
  ])('an entry whose %s is ignored and removed', async (_name, make) => {
    const e = make();
    await listen(socketPath(dir, e.probe_pid));
    const path = plant(e);
    expect(entryState(e)).toBe('gone');
    expect(readOwnEntries(dir)).toEqual([]);
    expect(existsSync(path)).toBe(false);
  });

  it('an entry whose socket nothing listens on is ignored and kept (its serve is starting or stopping)', () => {
    const path = plant(entry(process.pid, { probe_start: startTime(process.pid) }));
    expect(readOwnEntries(dir)).toEqual([]);
    expect(existsSync(path)).toBe(true);
  });

  it('TCP: live while the port listens, not once it is closed', async () => {
    const s = await listen(0);
    const port = (s.address() as { port: number }).port;
    const e = entry(process.pid, { socket: undefined, host: '127.0.0.1', port, probe_start: startTime(process.pid) });
    plant(e);
    expect(readOwnEntries(dir).map((x) => x.port)).toEqual([port]);
    await new Promise((r) => s.close(r));
    expect(listening(e)).toBe(false);
    expect(readOwnEntries(dir)).toEqual([]);
  });

  it('TCP: another user listening on the entry\'s port (the serve gone, the port taken) is not a live serve', async () => {
    // the script binds a free port as nobody, prints it, and listens until its stdin closes
    const src = "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port)});"
      + "process.stdin.on('end',()=>process.exit(0));process.stdin.resume()";
    const child = spawn('runuser', ['-u', nobodyUser().name, '--', process.execPath, '-e', src], { cwd: '/', stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout!.once('data', (b: Buffer) => resolve(Number(String(b).trim())));
        child.once('exit', (c) => reject(new Error(`listener as nobody exited ${c}`)));
      });
      const e = entry(process.pid, { socket: undefined, host: '127.0.0.1', port, probe_start: startTime(process.pid) });
      plant(e);
      expect(listening(e)).toBe(false);
      expect(readOwnEntries(dir)).toEqual([]);
    } finally {
      child.stdin!.end();
    }
  });

  it('an entry from before start times were recorded counts while its pid lives and its socket listens', async () => {
    await listen(socketPath(dir));
    plant(entry(process.pid));
    expect(readOwnEntries(dir)).toHaveLength(1);
  });

  it('sweepDead removes what dead serves and reused pids left, not what lives', async () => {
    const dead = deadPid();
    writeFileSync(entryPath(dir, dead), '{}', { mode: 0o600 });
    writeFileSync(socketPath(dir, dead), '');
    plant(entry(process.ppid, { probe_start: '1' }));
    // a socket file of a live pid with no entry and nothing listening: its serve died
    writeFileSync(socketPath(dir, process.ppid), '');
    await listen(socketPath(dir));
    writeEntry(dir, entry(process.pid));
    sweepDead(dir);
    expect(readdirSync(dir).sort()).toEqual([`serve-${process.pid}.json`, `serve-${process.pid}.sock`]);
  });
});

describe('reading another user\'s dir (ps as root)', () => {
  it('follows no link, blocks on no FIFO, takes only the dir owner\'s private files', async () => {
    const nobody = nobodyUser();
    chmodSync(dir, 0o700);
    chownSync(dir, nobody.uid, nobody.gid);
    await listen(socketPath(dir, process.pid));
    const good = entry(process.pid, { probe_start: startTime(process.pid) });
    const outside = mkdtempSync(join(tmpdir(), 'nffi-registry-outside-'));
    try {
      // root's file elsewhere that would pass as an entry
      writeFileSync(join(outside, 'e.json'), JSON.stringify({ ...good, pid: 99 }), { mode: 0o600 });
      symlinkSync(join(outside, 'e.json'), entryPath(dir, 11));
      lchownSync(entryPath(dir, 11), nobody.uid, nobody.gid);
      execFileSync('mkfifo', ['-m', '600', entryPath(dir, 12)]);
      chownSync(entryPath(dir, 12), nobody.uid, nobody.gid);
      writeFileSync(entryPath(dir, 13), JSON.stringify({ ...good, pid: 98 }), { mode: 0o600 }); // root's, not the owner's
      writeFileSync(entryPath(dir, 14), JSON.stringify({ ...good, pid: 97 }), { mode: 0o644 });
      chownSync(entryPath(dir, 14), nobody.uid, nobody.gid);
      writeFileSync(entryPath(dir, process.pid), JSON.stringify(good), { mode: 0o600 });
      chownSync(entryPath(dir, process.pid), nobody.uid, nobody.gid);
      expect(readEntries([dir]).map((e) => e.pid)).toEqual([1]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

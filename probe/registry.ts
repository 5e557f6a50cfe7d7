// Where a running `nffi-inspect serve` can be found: `serve-<probe pid>.json` (0600) in the run
// dir of the user running serve (/tmp/nffi-inspect.<euid>/, 0700, owned by that user), beside
// its unix socket `serve-<probe pid>.sock` (0600). The entry holds the endpoint (the socket, or
// host and port when serve was asked for TCP), the token every request must bring, the pid the
// session was opened on and the workers it has attached. The clients that join a serve
// (client/connect.ts: every command on a PID; `detach`) read only their own user's dir, and only
// files that nobody else could have written; `ps` also reads the workers' dirs, for display.
// serve removes its entry on exit. One left behind by a serve killed with -9 is stale: its
// probe is gone, or its pid now belongs to a later process (the entry records the probe's start
// time), or nothing listens on its endpoint any more; stale entries are never answered from,
// and the ones whose probe is gone are removed from our own dir (probe/README.md).
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTime } from './procs.js';
import { defaultRunDir, fdPath, O_OPEN_DIR } from './run-dir.js';

export { startTime };

export interface ServeEntry {
  probe_pid: number;
  /** The pid the session was opened on (master or worker). */
  pid: number;
  workers: number[];
  /** The default endpoint: a unix socket only its owner can open. */
  socket?: string;
  /** TCP, when serve was started with --port or --host. */
  host?: string;
  port?: number;
  /** Hex; every HTTP request and WebSocket upgrade must carry it. */
  token: string;
  /** Start time of probe_pid (/proc/PID/stat): tells the serve from a later process with its pid. */
  probe_start?: string;
}

const euid = (): number => process.geteuid?.() ?? -1;

/** The private dir of the user running this process: serve's entry and socket live there. */
export function serveDir(): string {
  return defaultRunDir(euid());
}

export function entryPath(dir: string, probePid = process.pid): string {
  return join(dir, `serve-${probePid}.json`);
}

export function socketPath(dir: string, probePid = process.pid): string {
  return join(dir, `serve-${probePid}.sock`);
}

/** Write the entry atomically, 0600, in `dir` (serve's own private dir), with the probe's start time. */
export function writeEntry(dir: string, entry: ServeEntry): string {
  const path = entryPath(dir, entry.probe_pid);
  const tmp = `${path}.tmp`;
  const stamped = { ...entry, probe_start: entry.probe_start ?? startTime(entry.probe_pid) };
  rmSync(tmp, { force: true });
  writeFileSync(tmp, JSON.stringify(stamped) + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
  return path;
}

export function removeEntry(path: string): void {
  rmSync(path, { force: true });
}

/**
 * Remove the entries and sockets of dead serve probes from `dir` (serve's own private dir):
 * their pid is gone, or a later process has it (the entry's start time says so, or there is
 * no entry and nothing listens on the socket).
 */
export function sweepDead(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^serve-(\d+)\.(json|sock|json\.tmp)$/.exec(name);
    if (m && probeGone(dir, Number(m[1]))) rmSync(join(dir, name), { force: true });
  }
}

function probeGone(dir: string, pid: number): boolean {
  if (pid === process.pid) return false;
  if (!alive(pid)) return true;
  const e = readOwnFile(entryPath(dir, pid));
  if (e) return reused(e);
  const sock = socketPath(dir, pid);
  return lstatSync(sock, { throwIfNoEntry: false }) !== undefined && !listening({ socket: sock });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/PID/stat (clock ticks after boot), undefined when there is no such process. */
/** The entry's pid now belongs to another process than the serve that wrote it. */
function reused(e: ServeEntry): boolean {
  return e.probe_start !== undefined && startTime(e.probe_pid) !== e.probe_start;
}

function procLines(path: string): string[] {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(1);
  } catch {
    return [];
  }
}

/** Something listens on the entry's endpoint (/proc/net/unix, /proc/net/tcp{,6}; no connection made). */
export function listening(e: Pick<ServeEntry, 'socket' | 'port'>): boolean {
  if (e.socket !== undefined) {
    // Num RefCount Protocol Flags Type St Inode Path; flag 00010000: accepting connections
    return procLines('/proc/net/unix').some((l) => {
      const f = l.trim().split(/\s+/);
      return f.length >= 8 && f.slice(7).join(' ') === e.socket && (parseInt(f[3]!, 16) & 0x10000) !== 0;
    });
  }
  if (e.port === undefined) return false;
  const port = e.port.toString(16).toUpperCase().padStart(4, '0');
  // sl local_address rem_address st ...; st 0A: LISTEN
  // ...; field 7: the socket's owner. Another user's socket on the port (serve gone, the port
  // taken) is not this user's serve: a root CLI must not hand it the token.
  return ['/proc/net/tcp', '/proc/net/tcp6'].some((p) => procLines(p).some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1]?.endsWith(`:${port}`) === true && f[3] === '0A' && Number(f[7]) === euid();
  }));
}

/** What an entry is worth: answer from it only when `live`; `gone` ones may be removed. */
export function entryState(e: ServeEntry): 'live' | 'gone' | 'not listening' {
  if (!alive(e.probe_pid) || reused(e)) return 'gone';
  return listening(e) ? 'live' : 'not listening';
}

function parseEntry(text: string): ServeEntry | undefined {
  try {
    const e = JSON.parse(text) as ServeEntry;
    return typeof e === 'object' && e && Number.isInteger(e.probe_pid) && Array.isArray(e.workers) ? e : undefined;
  } catch {
    return undefined;
  }
}

function entryNames(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^serve-\d+\.json$/.test(n));
  } catch {
    return [];
  }
}

const MAX_ENTRY_BYTES = 64 * 1024;

/**
 * Entries of live serve probes in `dirs`, for display only. These may be other users' dirs
 * (ps as root reads the workers' users' ones): each is opened once O_DIRECTORY|O_NOFOLLOW and
 * each entry through that descriptor O_NOFOLLOW|O_NONBLOCK, read only if it is a regular file
 * of the dir's owner, private and small, so no link is followed and no FIFO blocks. Nothing is
 * removed there; unreadable dirs and files are skipped.
 */
export function readEntries(dirs: string[]): ServeEntry[] {
  const out: ServeEntry[] = [];
  for (const dir of new Set(dirs)) {
    let dfd: number;
    try {
      dfd = openSync(dir, O_OPEN_DIR);
    } catch {
      continue;
    }
    try {
      const dst = fstatSync(dfd);
      const owner = dst.uid;
      // /tmp/nffi-inspect.<uid> is that user's or nobody's to trust (anyone may create it first)
      const named = /^\/tmp\/nffi-inspect\.(\d+)$/.exec(dir);
      if ((named && Number(named[1]) !== owner) || (dst.mode & 0o077) !== 0) continue;
      for (const name of entryNames(fdPath(dfd))) {
        const e = readEntryFile(fdPath(dfd, name), (st) => st.uid === owner);
        if (e && entryState(e) === 'live') out.push(e);
      }
    } finally {
      closeSync(dfd);
    }
  }
  return out;
}

/** An entry file, without following a link or blocking on a FIFO; only if `trusted(its stat)`. */
function readEntryFile(path: string, trusted: (st: { uid: number; mode: number }) => boolean): ServeEntry | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || (st.mode & 0o077) !== 0 || st.size > MAX_ENTRY_BYTES || !trusted(st)) return undefined;
    return parseEntry(readFileSync(fd, 'utf8'));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

const ownerOnly = (st: { uid: number; mode: number }): boolean => st.uid === euid() && (st.mode & 0o077) === 0;

/** One entry file, if this user wrote it and nobody else can have: no symlink, ours, 0600. */
function readOwnFile(path: string): ServeEntry | undefined {
  return readEntryFile(path, ownerOnly);
}

/** The live serve probes of this user: the only entries a client may connect to. */
export function readOwnEntries(dir = serveDir()): ServeEntry[] {
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    return [];
  }
  if (!st.isDirectory() || !ownerOnly(st)) return [];
  const out: ServeEntry[] = [];
  for (const name of entryNames(dir)) {
    const e = readOwnFile(join(dir, name));
    const state = e ? entryState(e) : undefined;
    if (e && state === 'live') out.push(e);
    // left by a serve killed with -9: ours to remove (our own private dir)
    if (e && state === 'gone') removeEntry(join(dir, name));
  }
  return out;
}

// Where a running `nffi-inspect serve` can be found: `serve-<probe pid>.json` (0600) in the run
// dir of the user running serve (/tmp/nffi-inspect.<euid>/, 0700, owned by that user), beside
// its unix socket `serve-<probe pid>.sock` (0600). The entry holds the endpoint (the socket, or
// host and port when serve was asked for TCP), the token every request must bring, the pid the
// session was opened on and the workers it has attached. The CLI commands that join a serve
// (`breakpoint`, `breakpoints`, `delete`, `detach`) read only their own user's dir, and only
// files that nobody else could have written; `ps` also reads the workers' dirs, for display.
// serve removes its entry on exit, and entries of dead probes are ignored.
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRunDir } from './run-dir.js';

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

/** Write the entry atomically, 0600, in `dir` (serve's own private dir). */
export function writeEntry(dir: string, entry: ServeEntry): string {
  const path = entryPath(dir, entry.probe_pid);
  const tmp = `${path}.tmp`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, JSON.stringify(entry) + '\n', { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
  return path;
}

export function removeEntry(path: string): void {
  rmSync(path, { force: true });
}

/** Remove the entries and sockets of dead serve probes from `dir` (serve's own private dir). */
export function sweepDead(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^serve-(\d+)\.(json|sock|json\.tmp)$/.exec(name);
    if (m && !alive(Number(m[1]))) rmSync(join(dir, name), { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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

/** Entries of live serve probes in `dirs`, for display only (unreadable dirs and files are skipped). */
export function readEntries(dirs: string[]): ServeEntry[] {
  const out: ServeEntry[] = [];
  for (const dir of new Set(dirs)) {
    for (const name of entryNames(dir)) {
      let e: ServeEntry | undefined;
      try {
        e = parseEntry(readFileSync(join(dir, name), 'utf8'));
      } catch {
        // half-written or not ours to read
      }
      if (e && alive(e.probe_pid)) out.push(e);
    }
  }
  return out;
}

const ownerOnly = (st: { uid: number; mode: number }): boolean => st.uid === euid() && (st.mode & 0o077) === 0;

/** One entry file, if this user wrote it and nobody else can have: no symlink, ours, 0600. */
function readOwnFile(path: string): ServeEntry | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !ownerOnly(st)) return undefined;
    return parseEntry(readFileSync(fd, 'utf8'));
  } finally {
    closeSync(fd);
  }
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
  return entryNames(dir).map((n) => readOwnFile(join(dir, n))).filter((e): e is ServeEntry => !!e && alive(e.probe_pid));
}

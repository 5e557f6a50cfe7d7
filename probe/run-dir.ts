// The per-user run directory where probe and agent meet (probe/README.md): one per worker
// user U, /tmp/nffi-inspect.<uid>/, mode 0700, owned by U. The probe creates it when missing
// and refuses one anybody else could have tampered with.
//
// The probe usually runs as root and U (nobody) can rename, replace or fill this directory at
// any moment (DESIGN.md, "Trust model"). So it is opened once, O_DIRECTORY|O_NOFOLLOW, and
// checked on the descriptor; every later operation goes through /proc/self/fd/<fd>/<name>
// (Node has no openat): it lands in the directory that was checked whatever U renames, and
// only the last component is looked up there. Files are created O_CREAT|O_EXCL|O_NOFOLLOW
// under random names and chowned/chmodded on their own descriptor; nothing is ever chmodded or
// chowned by a path U could swap.
import { randomBytes } from 'node:crypto';
import {
  chmodSync, closeSync, constants, existsSync, fchmodSync, fchownSync, fstatSync, lchownSync, lstatSync, mkdirSync,
  openSync, readdirSync, renameSync, rmdirSync, rmSync, writeSync, type Stats,
} from 'node:fs';
import { ProbeError } from './errors.js';

export function defaultRunDir(uid: number): string {
  return `/tmp/nffi-inspect.${uid}`;
}

/** The run dirs where the probes of a worker running as `uid` may be found: --run-dir (when
 * given) and that user's default one. */
export function runDirsOf(uid: number, runDir?: string): string[] {
  return runDir ? [runDir, defaultRunDir(uid)] : [defaultRunDir(uid)];
}

const euid = (): number => process.geteuid?.() ?? -1;
// (libuv opens every descriptor O_CLOEXEC)
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = constants;
/** A directory, never through a symlink and never blocking on whatever else is there (a FIFO). */
export const O_OPEN_DIR = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK;
const O_NEW_FILE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK;

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;
const mode = (st: Stats): string => (st.mode & 0o777).toString(8);

/** A path that resolves inside the directory open on `fd`, whatever happens to its own path. */
export function fdPath(fd: number, name = ''): string {
  return `/proc/self/fd/${fd}${name ? `/${name}` : ''}`;
}

/** The run dir, open and checked; names inside are reached through its descriptor. */
export class RunDir {
  constructor(readonly path: string, readonly fd: number, readonly uid: number, readonly gid: number) {}

  /** `name` inside this directory, for fs calls (never handed to anyone else). */
  at(name: string): string {
    return fdPath(this.fd, name);
  }

  /** An fs error's message with the run dir's own path for our /proc/self/fd/<fd>. */
  explain(err: unknown): string {
    return (err as Error).message.split(fdPath(this.fd)).join(this.path);
  }

  /**
   * Write `name` atomically: a random temp name created O_EXCL|O_NOFOLLOW, mode 0600, chowned
   * to U on its descriptor, renamed over `name` (rename replaces whatever U put there).
   */
  writeFile(name: string, text: string): void {
    const tmp = `${name}.${randomBytes(6).toString('hex')}.tmp`;
    let fd: number | undefined;
    try {
      fd = openSync(this.at(tmp), O_NEW_FILE, 0o600);
      writeSync(fd, text);
      fchmodSync(fd, 0o600);
      if (euid() === 0 && this.uid !== 0) fchownSync(fd, this.uid, this.gid);
      closeSync(fd);
      fd = undefined;
      renameSync(this.at(tmp), this.at(name));
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      rmSync(this.at(tmp), { force: true });
      throw new ProbeError(`cannot write ${this.path}/${name}: ${this.explain(err)}`);
    }
  }

  /** Remove the entry `name` (unlink never follows it); quiet when it is gone. */
  remove(name: string): void {
    try {
      rmSync(this.at(name), { force: true });
    } catch {
      // a directory or a race with U: not ours to insist on
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

function refuse(dir: string, why: string): never {
  throw new ProbeError(`refusing run directory ${dir}: ${why}`);
}

/** Check the open directory: ours to use only if it is U's (or, just made, ours) and private. */
function checkDir(dir: string, st: Stats, uid: number): void {
  if (!st.isDirectory()) refuse(dir, 'not a directory');
  if (st.uid !== uid) refuse(dir, `owned by uid ${st.uid}, not ${uid}`);
  if (st.mode & 0o077) refuse(dir, `mode ${mode(st)} (must be 700)`);
}

function openDir(dir: string): number | undefined {
  try {
    return openSync(dir, O_OPEN_DIR);
  } catch (err) {
    switch (code(err)) {
      case 'ENOENT': return undefined;
      // O_DIRECTORY|O_NOFOLLOW says ENOTDIR for a symlink too: lstat only to say which
      case 'ELOOP': case 'ENOTDIR': return refuse(dir, lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink() ? 'it is a symlink' : 'not a directory');
      default: throw new ProbeError(`cannot open run directory ${dir}: ${(err as Error).message}`);
    }
  }
}

/** mkdir; then, on the new directory's descriptor, check we made it, chmod 0700 and give it to U. */
function create(dir: string, uid: number, gid: number): number | undefined {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (code(err) === 'EEXIST') return undefined;
    throw new ProbeError(`cannot create run directory ${dir}: ${(err as Error).message}`);
  }
  const fd = openDir(dir);
  if (fd === undefined) refuse(dir, 'it vanished while being created');
  try {
    const st = fstatSync(fd);
    if (!st.isDirectory() || st.uid !== euid()) refuse(dir, 'it was replaced while being created');
    fchmodSync(fd, 0o700);
    if (euid() === 0 && uid !== 0) fchownSync(fd, uid, gid);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Create (as U, or chowned to U when we are root) or open and verify the run dir. */
export function openRunDir(dir: string, uid: number, gid: number): RunDir {
  const fd = openDir(dir) ?? create(dir, uid, gid) ?? openDir(dir);
  if (fd === undefined) refuse(dir, 'it vanished while being opened');
  try {
    checkDir(dir, fstatSync(fd), uid);
    if (!existsSync(fdPath(fd))) throw new ProbeError(`cannot use run directory ${dir}: /proc/self/fd is not mounted`);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return new RunDir(dir, fd, uid, gid);
}

/** Create or verify the run dir; returns its path (the descriptor is closed again). */
export function ensureRunDir(dir: string, uid: number, gid: number): string {
  openRunDir(dir, uid, gid).close();
  return dir;
}

/**
 * A directory of our own inside the run dir for one listening socket: made with a random name,
 * checked to be ours on its descriptor, 0711 when U is someone else (U may pass, not write),
 * so the socket in it can be chmodded and chowned by path: nobody but us can put anything there.
 */
export class SocketDir {
  /** The socket as the agent names it (through the run dir). */
  readonly socketPath: string;
  /** The socket as we bind, chmod, chown and unlink it: through our own descriptor. */
  readonly bindPath: string;

  private constructor(private readonly run: RunDir, readonly name: string, private readonly fd: number) {
    this.socketPath = `${run.path}/${name}/sock`;
    this.bindPath = fdPath(fd, 'sock');
  }

  static make(run: RunDir): SocketDir {
    sweepStale(run);
    for (let attempt = 0; ; attempt++) {
      const name = `probe-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        mkdirSync(run.at(name), { mode: 0o700 });
      } catch (err) {
        if (code(err) === 'EEXIST' && attempt < 5) continue;
        throw new ProbeError(`cannot create a socket directory in ${run.path}: ${run.explain(err)}`);
      }
      let fd: number | undefined;
      try {
        fd = openSync(run.at(name), O_OPEN_DIR);
        const st = fstatSync(fd);
        if (!st.isDirectory() || st.uid !== euid()) throw new Error('it was replaced while being created');
        fchmodSync(fd, euid() === run.uid ? 0o700 : 0o711);
        return new SocketDir(run, name, fd);
      } catch (err) {
        if (fd !== undefined) closeSync(fd);
        throw new ProbeError(`cannot create a socket directory in ${run.path}: ${run.explain(err)}`);
      }
    }
  }

  /** After bind: 0600 and U's, so U's worker may connect and nobody else. */
  grant(): void {
    // By path, but through our descriptor into a directory nobody else can write: nothing
    // can have replaced the socket. fchmod/fchown on a socket's descriptor would not reach
    // its inode in the file system, hence the path.
    const st = lstatSync(this.bindPath);
    if (!st.isSocket() || st.uid !== euid()) throw new ProbeError(`socket ${this.socketPath} is not ours`);
    chmodSync(this.bindPath, 0o600);
    if (euid() === 0 && this.run.uid !== 0) lchownSync(this.bindPath, this.run.uid, this.run.gid);
  }

  /** Unlink the socket, close our descriptor, remove the directory (U may have renamed it). */
  remove(): void {
    rmSync(this.bindPath, { force: true });
    closeSync(this.fd);
    try {
      rmdirSync(this.run.at(this.name));
    } catch {
      // renamed or replaced by U: at worst an empty directory of ours is left in U's run dir
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return code(err) === 'EPERM';
  }
}

/**
 * Socket directories of probes killed mid-attach: U cannot empty them (they are ours), so
 * we do, through their descriptors, when they are ours and their probe is gone.
 */
function sweepStale(run: RunDir): void {
  let names: string[];
  try {
    names = readdirSync(run.at(''));
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^probe-(\d+)-[0-9a-f]{8}$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    let fd: number | undefined;
    try {
      fd = openSync(run.at(name), O_OPEN_DIR);
      if (fstatSync(fd).uid !== euid()) continue;
      rmSync(fdPath(fd, 'sock'), { force: true });
      rmdirSync(run.at(name));
    } catch {
      // U's own, or in use after all: left alone
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

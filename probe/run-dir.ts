// The per-user run directory where probe and agent meet (probe/README.md): one per worker
// user U, /tmp/nffi-inspect.<uid>/, mode 0700, owned by U. The probe creates it when missing
// and refuses one anybody else could have tampered with.
import { chmodSync, chownSync, lstatSync, mkdirSync } from 'node:fs';
import { ProbeError } from './errors.js';

export function defaultRunDir(uid: number): string {
  return `/tmp/nffi-inspect.${uid}`;
}

const euid = (): number => process.geteuid?.() ?? -1;

/** Create (as U, or chowned to U when we are root) or verify the run dir; returns its path. */
export function ensureRunDir(dir: string, uid: number, gid: number): string {
  let st = lstatOrUndefined(dir);
  if (!st) {
    try {
      mkdirSync(dir, { mode: 0o700 });
      chmodSync(dir, 0o700);
      if (euid() === 0 && uid !== 0) chownSync(dir, uid, gid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ProbeError(`cannot create run directory ${dir}: ${(err as Error).message}`);
      }
    }
    st = lstatOrUndefined(dir);
  }
  if (!st) throw new ProbeError(`run directory ${dir} vanished`);
  if (st.isSymbolicLink()) throw new ProbeError(`refusing run directory ${dir}: it is a symlink`);
  if (!st.isDirectory()) throw new ProbeError(`refusing run directory ${dir}: not a directory`);
  if (st.uid !== uid) throw new ProbeError(`refusing run directory ${dir}: owned by uid ${st.uid}, not ${uid}`);
  if (st.mode & 0o077) {
    throw new ProbeError(`refusing run directory ${dir}: mode ${(st.mode & 0o777).toString(8)} (must be 700)`);
  }
  return dir;
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Give a file to U when we are root (a no-op otherwise: it is U's already). */
export function giveTo(path: string, uid: number, gid: number): void {
  if (euid() === 0 && uid !== 0) chownSync(path, uid, gid);
}

// Where a running `nffi-inspect serve` can be found: `serve-<probe pid>.json` in the run dir
// of the workers' user, holding its port and the workers it has attached. `detach` and `ps`
// read it; serve removes it on exit, and entries of dead probes are ignored.
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { giveTo } from './run-dir.js';

export interface ServeEntry {
  probe_pid: number;
  port: number;
  /** The pid the session was opened on (master or worker). */
  pid: number;
  workers: number[];
}

export function entryPath(dir: string, probePid = process.pid): string {
  return join(dir, `serve-${probePid}.json`);
}

export function writeEntry(dir: string, entry: ServeEntry, owner?: { uid: number; gid: number }): string {
  const path = entryPath(dir, entry.probe_pid);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(entry) + '\n', { mode: 0o600 });
  if (owner) giveTo(tmp, owner.uid, owner.gid);
  renameSync(tmp, path);
  return path;
}

export function removeEntry(path: string): void {
  rmSync(path, { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Entries of live serve probes in `dirs` (unreadable dirs and files are skipped). */
export function readEntries(dirs: string[]): ServeEntry[] {
  const out: ServeEntry[] = [];
  for (const dir of new Set(dirs)) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => /^serve-\d+\.json$/.test(n))) {
      try {
        const e = JSON.parse(readFileSync(join(dir, name), 'utf8')) as ServeEntry;
        if (alive(e.probe_pid)) out.push(e);
      } catch {
        // half-written or not ours to read
      }
    }
  }
  return out;
}

// Other local users, for the trust-model tests (DESIGN.md "Trust model"): `nffi-hostile` (a
// second unix user, created once, idempotently) and the worker user `nobody`, and a way to run
// a command or a Node script as either with nothing inherited but the uid/gid.
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';

export const HOSTILE = 'nffi-hostile';

export interface User { name: string; uid: number; gid: number }

function lookup(name: string): User | undefined {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  return { name, uid: Number(r.stdout.trim()), gid };
}

/** `nffi-hostile`, created with `useradd -M -s /usr/sbin/nologin` the first time. */
export function hostileUser(): User {
  const found = lookup(HOSTILE);
  if (found) return found;
  const r = spawnSync('useradd', ['-M', '-s', '/usr/sbin/nologin', HOSTILE], { encoding: 'utf8' });
  // another test file may have created it meanwhile (exit 9: already exists)
  if (r.status !== 0 && r.status !== 9) throw new Error(`useradd ${HOSTILE}: ${r.stderr}`);
  return lookup(HOSTILE)!;
}

export function nobodyUser(): User {
  return lookup('nobody')!;
}

function asUser(u: User): string[] {
  return ['setpriv', `--reuid=${u.uid}`, `--regid=${u.gid}`, '--clear-groups', '--'];
}

/** Run `cmd args` as `u` and wait (stdout/stderr collected). */
export function runAs(u: User, cmd: string, args: string[]): SpawnSyncReturns<string> {
  const [bin, ...pre] = asUser(u);
  return spawnSync(bin!, [...pre, cmd, ...args], { encoding: 'utf8', cwd: '/' });
}

/**
 * Run a Node script (source text) as `u`, at `nice` (default 0); resolves with its stdout when
 * it exits 0.
 */
export function nodeAs(u: User, source: string, args: string[] = [], nice = 0): Promise<string> {
  const argv = ['nice', '-n', String(nice), ...asUser(u), process.execPath, '-e', source, '--', ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => (status === 0 ? resolve(out) : reject(new Error(`script as ${u.name} exited ${status}: ${err}`))));
  });
}

// Workers started by root run as an unprivileged user (nobody by default). If the checkout
// is not readable by that user (say it lives under /root), the workers cannot load lua/ or
// native/build/, so we copy those into a world-readable staging root inside the instance
// prefix. Tests then stay honest about workers running as nobody instead of quietly
// running everything as root.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Directories of the repo root that workers read at run time. */
const RUNTIME_DIRS = ['lua', join('native', 'build')];

/** The user the workers will run as, or undefined when they run as the current user. */
export function workerUser(userDirective: string | undefined): string | undefined {
  if (process.getuid?.() !== 0) return undefined; // not root: nginx cannot switch users
  return userDirective?.trim().split(/\s+/)[0] ?? 'nobody';
}

/** Can `user` read and traverse `dir` (every ancestor included)? Asks the kernel via runuser. */
export function readableBy(user: string, dir: string): boolean {
  const r = spawnSync('runuser', ['-u', user, '--', 'test', '-r', dir, '-a', '-x', dir], {
    stdio: 'ignore',
  });
  return r.status === 0;
}

/**
 * The root to hand to nginxConfig(): `root` itself when the worker user can read it,
 * otherwise a copy of its runtime dirs under `prefix`/root.
 */
export function runtimeRoot(root: string, prefix: string, user: string | undefined): string {
  if (user === undefined || readableBy(user, join(root, 'lua'))) return root;
  const staged = join(prefix, 'root');
  mkdirSync(staged, { recursive: true });
  for (const dir of RUNTIME_DIRS) {
    const src = join(root, dir);
    if (!existsSync(src)) continue;
    const dst = join(staged, dir);
    mkdirSync(join(dst, '..'), { recursive: true });
    cpSync(src, dst, { recursive: true, dereference: true });
  }
  makeWorldReadable(staged);
  return staged;
}

/** `dir` if the worker user can read it, else a world-readable copy at `prefix`/`name`. */
export function readableDir(dir: string, prefix: string, user: string | undefined, name: string): string {
  if (user === undefined || readableBy(user, dir)) return dir;
  const staged = join(prefix, name);
  cpSync(dir, staged, { recursive: true, dereference: true });
  makeWorldReadable(staged);
  return staged;
}

/** chmod a+rX, recursively: the copy keeps the source modes, which may be 0700/0600. */
function makeWorldReadable(path: string): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    chmodSync(path, st.mode | 0o555);
    for (const name of readdirSync(path)) makeWorldReadable(join(path, name));
  } else {
    chmodSync(path, st.mode | 0o444 | (st.mode & 0o100 ? 0o111 : 0));
  }
}

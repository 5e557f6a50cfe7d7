// Small process and network probes for the nginx launcher, read straight from /proc so they
// work the same for workers running as nobody and need no ps(1).
import { readdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { procStatus, procTitle } from '../../probe/procs.js';

export { procStatus, procTitle };

export function childPids(parent: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (procStatus(pid)?.get('PPid') === String(parent)) out.push(pid);
  }
  return out.sort((a, b) => a - b);
}

/**
 * Serving workers of a master. Workers left over from a reload retitle themselves
 * "nginx: worker process is shutting down" and are deliberately not counted.
 */
export function workerPidsOf(master: number): number[] {
  return childPids(master).filter((pid) => procTitle(pid) === 'nginx: worker process');
}

/** Alive and not a zombie (a zombie has exited; only its parent has not reaped it yet). */
export function isAlive(pid: number): boolean {
  const state = procStatus(pid)?.get('State');
  return state !== undefined && !state.startsWith('Z');
}

/** Real uid of a process (first field of the Uid: line). */
export function procUid(pid: number): number | undefined {
  const uid = procStatus(pid)?.get('Uid')?.split(/\s+/)[0];
  return uid === undefined ? undefined : Number(uid);
}

/** Ask the kernel for a free port: bind port 0 on 127.0.0.1, read it, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every `intervalMs` until true or `timeoutMs` passes; returns the last result. */
export async function pollUntil(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

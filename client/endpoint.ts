// The other side of client/connect.ts: a session published as a `serve` endpoint for other
// front ends to join. It listens (a unix socket in this user's private run dir by default,
// TCP when asked; probe/serve-http.ts), and keeps this serve's registry entry (0600, beside the
// socket: the endpoint, the token, the pid and the workers attached now) up to date, so that
// connect() finds it; the entry goes when the endpoint stops.
import { entryPath, removeEntry, serveDir, socketPath, sweepDead, writeEntry, type ServeEntry } from '../probe/registry.js';
import { ensureRunDir } from '../probe/run-dir.js';
import { isLoopback, newToken, type Listen } from '../probe/serve-auth.js';
import { serveSession, type ServeHandle } from '../probe/serve-http.js';
import { Session, type SessionOptions } from '../probe/session.js';
import type { Disposer } from './client.js';

export type { Listen };

/** serve's own private dir (0700; refused when anybody else could have made it), with what
 * serves killed by -9 left there swept; and the unix socket a serve of this process uses. */
export function serveHome(): { dir: string; socket: string } {
  const dir = ensureRunDir(serveDir(), process.geteuid?.() ?? 0, process.getegid?.() ?? 0);
  sweepDead(dir);
  return { dir, socket: socketPath(dir) };
}

export interface PublishOptions extends SessionOptions {
  /** Browser origins let in (probe/serve-auth.ts). */
  allowOrigins?: string[];
}

export interface Published {
  /** Where it listens (the port once bound). */
  listen: Listen;
  /** What every request must bring (kept in the registry entry; printed only for TCP). */
  token: string;
  /** The registry entry. */
  entryPath: string;
  /** TCP on an address other hosts can reach (the token then travels in clear text). */
  exposed: boolean;
  /** The workers attached now. */
  workers(): number[];
  /** Once, with why, when no worker can come back (nginx exited). */
  onEnd(listener: (reason: string) => void): Disposer;
  /** Why it ended on its own, or undefined. */
  readonly ended: string | undefined;
  /** Tell the front ends (each breakpoint's end first, when nginx ended it), close, detach,
   * remove the entry. Once; later calls wait for the first. */
  stop(): Promise<void>;
}

/** Open a session on `pid` and serve it on `listen`. */
export async function publish(pid: number, listen: Listen, opts: PublishOptions = {}): Promise<Published> {
  const { allowOrigins = [], ...sessionOpts } = opts;
  const dir = serveDir();
  const token = newToken();
  const session = await Session.open(pid, sessionOpts);
  let registry: string | undefined;
  let stopping = false;
  const workers = (): number[] => session.targets().filter((t) => t.attached).map((t) => t.pid);
  const cleanup = async (): Promise<void> => {
    // Detaching fires target events: stop re-registering first, remove the entry last.
    stopping = true;
    await session.close();
    if (registry) removeEntry(registry);
  };
  let server: ServeHandle;
  let stopped: Promise<void> | undefined;
  try {
    server = await serveSession(session, { listen, token, allowOrigins });
    const bound = server.listen;
    const register = (): void => {
      if (stopping) return;
      const entry: ServeEntry = { probe_pid: process.pid, pid, workers: workers(), ...bound, token };
      registry = writeEntry(dir, entry);
    };
    register();
    session.onTargetEvent(() => register());
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    listen: server.listen,
    token,
    entryPath: entryPath(dir),
    exposed: 'host' in server.listen && !isLoopback(server.listen.host),
    workers,
    onEnd: (listener) => session.onEnd(listener),
    get ended() {
      return session.ended;
    },
    stop: () => (stopped ??= (async () => {
      // the entry goes first: while the listener closes and the workers detach (up to ~1 s),
      // a front end must not find it and connect to whoever binds the port next
      stopping = true;
      if (registry) removeEntry(registry);
      registry = undefined;
      try {
        // the front ends get each breakpoint's end, with why, before the close
        if (session.ended !== undefined) await server.breakpoints.clear(session.ended);
        await server.close(session.ended);
      } finally {
        await cleanup();
      }
    })()),
  };
}

// The one place a front end learns which client it has: the running `serve` probe of this
// user that holds the pid (its registry entry says so), else a session opened in this process.
// Each pid is read from /proc once on the way.
import { ProbeError } from '../probe/errors.js';
import { readNginxProc, type NginxProc } from '../probe/procs.js';
import { readOwnEntries, type ServeEntry } from '../probe/registry.js';
import type { ProbeClient } from './client.js';
import { LocalClient, type LocalOptions } from './local.js';
import type { RemoteClient, RemoteOptions } from './remote.js';

export interface ConnectOptions extends LocalOptions, RemoteOptions {}

function nginxProc(pid: number): NginxProc {
  const proc = readNginxProc(pid);
  if (!proc) throw new ProbeError(`${pid} is not an nginx master or worker`, 'NOTNGINX');
  return proc;
}

/** This user's live serve probe whose session was opened on `pid` or holds worker `pid`. */
function serveOf(pid: number): ServeEntry | undefined {
  const entries = readOwnEntries();
  return entries.find((e) => e.pid === pid) ?? entries.find((e) => e.workers.includes(pid));
}

/** The remote client, loaded only when there is a serve to join (chrome-remote-interface and
 * its ws take a while to load, which a one-shot command in-process need not pay). */
async function join(entry: ServeEntry, pid: number, opts: RemoteOptions): Promise<RemoteClient> {
  const { RemoteClient } = await import('./remote.js');
  return RemoteClient.open(entry, pid, opts);
}

/** Join the serve that holds `pid`, else open a session on it in this process. */
export async function connect(pid: number, opts: ConnectOptions = {}): Promise<ProbeClient> {
  const root = nginxProc(pid);
  const entry = serveOf(pid);
  return entry ? join(entry, pid, opts) : LocalClient.open(root, opts);
}

/** The serve that holds `pid`, joined; undefined when none does (nothing is opened then). */
export async function joinServe(pid: number, opts: RemoteOptions = {}): Promise<RemoteClient | undefined> {
  nginxProc(pid);
  const entry = serveOf(pid);
  return entry ? join(entry, pid, opts) : undefined;
}

/** Connect, run `fn`, close (also when `fn` throws). */
export async function withClient<T>(pid: number, opts: ConnectOptions, fn: (c: ProbeClient) => Promise<T>): Promise<T> {
  const client = await connect(pid, opts);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

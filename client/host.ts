// What is on this host, for the commands that are not about one session: the nginx masters
// and workers and whether each worker's agent is ready (`ps`), letting the serve probes that
// hold a pid go (`detach`), and whether a pid is a master (`stack` wants a worker).
import { ProbeError } from '../probe/errors.js';
import { listMasters, masterPlace, readNginxProc, workersOf, type NginxProc } from '../probe/procs.js';
import { readEntries, readOwnEntries, serveDir, type ServeEntry } from '../probe/registry.js';
import { runDirsOf } from '../probe/run-dir.js';

/** agent: `ready`, `no agent`, `permission denied`, `attached (serve N)` (from serve's
 * registry entry, no attach), `error: …`, or `not checked` (ps without --agents), `-` for a
 * worker shutting down. */
export interface HostWorker { pid: number; user: string; state: 'serving' | 'shutting down'; agent: string }
/** prefix and config: as the master was started (-p, -c), else its binary's built-in ones. */
export interface HostMaster { pid: number; user: string; prefix: string | null; config: string | null; workers: HostWorker[] }

export const NOT_CHECKED = 'not checked';

export interface ListOptions {
  /** Only this master, or the master of this worker. */
  only?: number;
  /** Try a quick attach to each serving worker (default false: nothing is attached). */
  agents?: boolean;
  runDir?: string;
}

const QUICK_HELLO_MS = 1_000;

/** "ready" is measured, not guessed: with `agents`, a quick attach (the agent's hello within
 * 1 s, then an immediate detach). Without, nothing is attached: a worker is `not checked`.
 * Either way a worker held by a running `serve` says so, from serve's registry entry (an
 * agent serves one probe at a time). */
async function agentState(w: NginxProc, serves: ServeEntry[], opts: ListOptions): Promise<string> {
  if (w.shuttingDown) return '-';
  const serve = serves.find((e) => e.workers.includes(w.pid));
  if (serve) return `attached (serve ${serve.probe_pid})`;
  if (!opts.agents) return NOT_CHECKED;
  // loaded only when asked: ps without --agents starts faster
  const { attachWorker, checkPermission } = await import('../probe/attach.js');
  try {
    checkPermission(w);
    const link = await attachWorker(w, { helloTimeoutMs: QUICK_HELLO_MS, ...(opts.runDir ? { runDir: opts.runDir } : {}) });
    await link.detach('ps');
    return 'ready';
  } catch (err) {
    if (!(err instanceof ProbeError)) throw err;
    if (err.code === 'EPERM') return 'permission denied';
    if (err.code === 'NOAGENT') return 'no agent';
    return `error: ${err.message}`;
  }
}

/** The nginx masters on this host with their workers and each worker's agent state, all
 * workers checked in parallel. */
export async function listNginx(opts: ListOptions = {}): Promise<HostMaster[]> {
  const { only } = opts;
  const found = listMasters().filter((m) => only === undefined || m.pid === only || m.workers.some((w) => w.pid === only));
  if (only !== undefined && found.length === 0) throw new ProbeError(`${only} is not an nginx master or worker`);
  // serve registers in its own user's dir (ours, usually); one run as a worker user, in theirs
  const serves = readEntries([serveDir(), ...found.flatMap((m) => m.workers.flatMap((w) => runDirsOf(w.uid, opts.runDir)))]);
  return Promise.all(found.map(async (m) => ({
    pid: m.pid,
    user: m.user,
    ...masterPlace(m.pid, m.title),
    workers: await Promise.all(m.workers.map(async (w) => ({
      pid: w.pid,
      user: w.user,
      state: w.shuttingDown ? 'shutting down' as const : 'serving' as const,
      agent: await agentState(w, serves, opts),
    }))),
  })));
}

export interface Detached { worker: number; probePid: number }

/** Ask each serve probe of this user that holds `pid` (a worker, or any worker of a master,
 * shutting-down ones too) to let go of it, through its /json/close/<pid>. [] when none does. */
export async function detachServes(pid: number): Promise<Detached[]> {
  const proc = readNginxProc(pid);
  if (!proc) throw new ProbeError(`${pid} is not an nginx master or worker`);
  const workers = proc.role === 'master' ? workersOf(pid, { shuttingDown: true }) : [proc];
  const wanted = new Set(workers.map((w) => w.pid));
  const done: Detached[] = [];
  // node:http, only when there is a serve to ask
  const { serveHttp } = await import('../probe/serve-client.js');
  for (const e of readOwnEntries()) {
    for (const w of e.workers.filter((p) => wanted.has(p))) {
      const r = await serveHttp(e, 'GET', `/json/close/${w}`);
      if (r.status !== 200) throw new ProbeError(`serve probe ${e.probe_pid} refused to detach ${w} (HTTP ${r.status})`);
      done.push({ worker: w, probePid: e.probe_pid });
    }
  }
  return done;
}

/** The serving workers of `pid` when it is a master; undefined for a worker (or no nginx). */
export function workersIfMaster(pid: number): number[] | undefined {
  return readNginxProc(pid)?.role === 'master' ? workersOf(pid).map((w) => w.pid) : undefined;
}

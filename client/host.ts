// What is on this host, for the commands that are not about one session: the nginx masters
// and workers and whether each worker's agent is ready (`ps`), letting the serve probes that
// hold a pid go (`detach`), and whether a pid is a master (`stack` wants a worker).
import { attachWorker, checkPermission } from '../probe/attach.js';
import { ProbeError } from '../probe/errors.js';
import { listMasters, readNginxProc, workersOf, type NginxProc } from '../probe/procs.js';
import { readEntries, readOwnEntries, serveDir, type ServeEntry } from '../probe/registry.js';
import { runDirsOf } from '../probe/run-dir.js';
import { serveHttp } from '../probe/serve-client.js';

export interface HostWorker { pid: number; user: string; state: 'serving' | 'shutting down'; agent: string }
export interface HostMaster { pid: number; user: string; workers: HostWorker[] }

export interface ListOptions {
  /** Only this master, or the master of this worker. */
  only?: number;
  /** Try a quick attach to each serving worker (default true). */
  check?: boolean;
  runDir?: string;
}

const QUICK_HELLO_MS = 1_000;

/** "ready" is measured, not guessed: a quick attach (hello within 1 s, then an immediate
 * detach). Workers held by a running `serve` say so (an agent serves one probe at a time). */
async function agentState(w: NginxProc, serves: ServeEntry[], opts: ListOptions): Promise<string> {
  if (w.shuttingDown || opts.check === false) return '-';
  const serve = serves.find((e) => e.workers.includes(w.pid));
  if (serve) return `attached (serve ${serve.probe_pid})`;
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

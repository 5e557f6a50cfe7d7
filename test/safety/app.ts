// What the safety tests (test/safety/) share: the nginx lines that mount
// test/fixtures/lua/soak_app.lua with the agent, what a worker says about itself without an
// attach (/state, /lag), its RSS, the error-log lines that mean a crash, and the check that
// nothing is left armed: a fresh attach sees no breakpoint and no hook, and the run dir is empty.
import { readdirSync, readFileSync } from 'node:fs';
import { Session } from '../../probe/session.js';
import { markerLine } from '../harness/bp-app.js';
import { http, waitFor, type NginxHandle } from '../harness/nginx.js';
import { FIXTURE_LUA } from '../harness/ffi-app.js';

export { FIXTURE_LUA };

export const SOAK_FILE = 'soak_app.lua';
export const SOAK_LINE = markerLine(SOAK_FILE, 'soak');

/** The agent's run dir comes from NFFI_INSPECT_RUN_DIR (a private one per test file). */
export const SOAK_HTTP = `
lua_shared_dict soak_lag 1m;
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
    require("soak_app").init()
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("soak_app").route() }
    }
}
`;

/** SOAK_HTTP's routes and test/fixtures/lua/faults_app.lua's (misbehaving runtimes, a queue that
 * fills); the runtime library built from test/fixtures/native/faulty_rt.c in NFFI_FAULTY_LIB. */
export const FAULTS_HTTP = `
lua_shared_dict soak_lag 1m;
init_worker_by_lua_block {
    require("nffi.inspect").start({ run_dir = os.getenv("NFFI_INSPECT_RUN_DIR") })
    require("faults_app").init()
}

server {
    listen 127.0.0.1:$PORT;

    location / {
        content_by_lua_block { require("faults_app").route() }
    }
}
`;

export interface RuntimeState { name: string; live: number; depth: number; in_flight: number; completed: number; enqueued: number; rejected: number; timeouts: number }
export interface WorkerState { pid: number; hook: boolean; task_hook: boolean; gc_running: boolean; runtimes: RuntimeState[] }

/** GET `path` until every worker in `pids` answered; each worker's last answer. */
export async function fromEach<T>(nginx: NginxHandle, path: string, pids: number[], what: string): Promise<Map<number, T>> {
  const seen = new Map<number, T>();
  await waitFor(async () => {
    const res = await http(nginx().url(path), { timeout: 5_000 });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.body.toString()}`);
    seen.set(Number(res.headers['x-pid']), JSON.parse(res.body.toString('utf8')) as T);
    return pids.every((p) => seen.has(p));
  }, { timeout: 10_000, interval: 0, what: `${what} from workers ${pids.join(', ')}` });
  return seen;
}

/** Each worker's own view: its debug hook, the binding's task hook, the GC, its runtimes. */
export function workerStates(nginx: NginxHandle, pids: number[]): Promise<Map<number, WorkerState>> {
  return fromEach<WorkerState>(nginx, '/state', pids, '/state');
}

/** Live, queued and in-flight tasks of every runtime of every worker in `states`. */
export function outstanding(states: Map<number, WorkerState>): number {
  let n = 0;
  for (const s of states.values()) for (const r of Array.isArray(s.runtimes) ? s.runtimes : []) n += r.live + r.depth + r.in_flight;
  return n;
}

export interface Lag { pid: number; cpu_ms: number; wall_ms: number; ticks: number }

/** Per worker, the longest CPU (and wall) stretch between two 1 ms ticks since the last reset. */
export async function lag(nginx: NginxHandle, reset = false): Promise<Lag[]> {
  const res = await http(nginx().url(`/lag${reset ? '?reset=1' : ''}`), { timeout: 5_000 });
  const doc = JSON.parse(res.body.toString('utf8'));
  return Array.isArray(doc) ? doc : [];
}

/** VmRSS of `pid` in kB. */
export function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Error-log lines that mean a worker crashed (`exited on signal N`, an [alert]) or nginx itself
 * complained loudly; not the master's notices of the signals it received (a reload's SIGHUP). */
export function crashLines(log: string): string[] {
  return log.split('\n').filter((l) => /\[(alert|crit|emerg)\]|exited on signal|core dumped/.test(l));
}

/** What is in the run dir (nothing, when every session is over). */
export function runDirEntries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export interface Armed { pid: number; breakpoints: unknown[]; hook: boolean; armed: number; pending: number; task_hook: boolean; watching: boolean }

/**
 * A fresh session on `pid` (master or worker): what each worker's agent has armed (breakpoints,
 * debug hook, task hook, watchpoints). Retries while a previous session still holds a worker
 * (its agent lets go on close, or at the heartbeat timeout of a stopped probe).
 */
export async function freshAttach(pid: number, runDir: string, timeout = 15_000): Promise<Armed[]> {
  const session = await waitFor(async () => {
    const s = await Session.open(pid, { runDir, helloTimeoutMs: 1_000 });
    if (s.targets().every((t) => t.attached)) return s;
    await s.close();
    return undefined;
  }, { timeout, interval: 200, what: `a fresh session with every worker of ${pid}` });
  try {
    const bps = await session.callAll('Debugger.getBreakpoints', {});
    const stats = await session.callAll('Agent.getStats', {});
    return bps.map((b, i) => {
      const st = (stats[i]!.result as any)?.breakpoints ?? {};
      return {
        pid: b.pid,
        breakpoints: (b.result as { breakpoints: unknown[] } | undefined)?.breakpoints ?? [`error: ${b.error}`],
        hook: st.hook, armed: st.armed, pending: st.pending, task_hook: st.tasks?.hook,
        watching: Boolean(st.native?.watching),
      };
    });
  } finally {
    await session.close();
  }
}

/** What freshAttach() returns for a worker with nothing armed. */
export const NOTHING_ARMED = { breakpoints: [], hook: false, armed: 0, pending: 0, task_hook: false, watching: false };

export interface Slices { pid: number; max_slice_cpu_ms: number; max_slice_ms: number; worst_method: string }

/**
 * The longest stretch any agent walk held each worker's event loop since it started (Agent.getStats,
 * lua/nffi/inspect/budget.lua), in CPU and wall ms, and the request method it was in.
 */
export async function agentSlices(pid: number, runDir: string): Promise<Slices[]> {
  const session = await waitFor(() => Session.open(pid, { runDir, helloTimeoutMs: 1_000 }), { timeout: 15_000, interval: 200, what: `a session with ${pid}` });
  try {
    return (await session.callAll('Agent.getStats', {})).map((r) => {
      const st = (r.result ?? {}) as { max_slice_cpu_ms?: number; max_slice_ms?: number; methods?: Record<string, { max_slice_cpu_ms: number }> };
      const methods = Object.entries(st.methods ?? {}).sort((a, b) => b[1].max_slice_cpu_ms - a[1].max_slice_cpu_ms);
      return { pid: r.pid, max_slice_cpu_ms: st.max_slice_cpu_ms ?? NaN, max_slice_ms: st.max_slice_ms ?? NaN, worst_method: methods[0]?.[0] ?? '-' };
    });
  } finally {
    await session.close();
  }
}

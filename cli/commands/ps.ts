// `nffi-inspect ps [--no-check] [--json]`: nginx masters and workers on this host and whether
// each worker's agent is ready. "ready" is measured, not guessed: a quick attach (hello within
// 1 s, then an immediate detach) to every serving worker, all in parallel. Workers we may not
// attach to say "permission denied"; workers held by a running `serve` say "attached (serve
// PID)" (an agent serves one probe at a time); shutting-down workers and --no-check say "-".
import type { Command } from 'commander';
import { attachWorker, checkPermission } from '../../probe/attach.js';
import { ProbeError } from '../../probe/errors.js';
import { listMasters, type NginxProc } from '../../probe/procs.js';
import { readEntries, serveDir, type ServeEntry } from '../../probe/registry.js';
import { defaultRunDir } from '../../probe/run-dir.js';
import { formatTable } from '../format/table.js';
import { parsePid, printJson, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  check?: boolean;
}

interface PsWorker { pid: number; user: string; state: 'serving' | 'shutting down'; agent: string }
interface PsMaster { pid: number; user: string; workers: PsWorker[] }

const QUICK_HELLO_MS = 1_000;

async function agentState(w: NginxProc, serves: ServeEntry[], opts: Options): Promise<string> {
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

function human(masters: PsMaster[]): string {
  if (masters.length === 0) return '(no nginx master process on this host)';
  const rows = masters.flatMap((m) => [
    [String(m.pid), '-', 'master', m.user, `${m.workers.length} worker${m.workers.length === 1 ? '' : 's'}`],
    ...m.workers.map((w) => [String(w.pid), String(m.pid), w.state === 'serving' ? 'worker' : 'worker (shutting down)', w.user, w.agent]),
  ]);
  return formatTable(['pid', 'master', 'role', 'user', 'agent'], rows);
}

export function registerPs(program: Command): void {
  withProbeOptions(program
    .command('ps')
    .description('list nginx masters and workers on this host, and whether each worker has the agent ready')
    .argument('[PID]', 'only this master (or the master of this worker)')
    .option('--no-check', 'do not try a quick attach to each worker')
    .option('--json', 'print JSON'))
    .action(async (pidText: string | undefined, opts: Options) => {
      const only = pidText === undefined ? undefined : parsePid(pidText);
      const found = listMasters().filter((m) => only === undefined || m.pid === only || m.workers.some((w) => w.pid === only));
      if (only !== undefined && found.length === 0) throw new ProbeError(`${only} is not an nginx master or worker`);
      const dirs = opts.runDir ? [opts.runDir] : found.flatMap((m) => m.workers.map((w) => defaultRunDir(w.uid)));
      // serve registers in its own user's dir (ours, usually); one run as a worker user, in theirs.
      const serves = readEntries([serveDir(), ...dirs]);
      const masters: PsMaster[] = await Promise.all(found.map(async (m) => ({
        pid: m.pid,
        user: m.user,
        workers: await Promise.all(m.workers.map(async (w) => ({
          pid: w.pid,
          user: w.user,
          state: w.shuttingDown ? 'shutting down' as const : 'serving' as const,
          agent: await agentState(w, serves, opts),
        }))),
      })));
      if (opts.json) printJson({ masters });
      else process.stdout.write(human(masters) + '\n');
    });
}

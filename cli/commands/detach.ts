// `nffi-inspect detach PID`: ask this user's running `serve` probe that holds PID (a worker, or
// every worker of a master) to let go, through its /json/close/<pid> (with its token). One-shot
// commands detach on their own when they end, so with no serve running there is nothing to do:
// "not attached".
import type { Command } from 'commander';
import { ProbeError } from '../../probe/errors.js';
import { readNginxProc, workersOf } from '../../probe/procs.js';
import { readOwnEntries, type ServeEntry } from '../../probe/registry.js';
import { serveHttp } from '../../probe/serve-client.js';
import { parsePid, withProbeOptions, type ProbeOptions } from '../pid.js';

async function close(entry: ServeEntry, pid: number): Promise<void> {
  const r = await serveHttp(entry, 'GET', `/json/close/${pid}`);
  if (r.status !== 200) throw new ProbeError(`serve probe ${entry.probe_pid} refused to detach ${pid} (HTTP ${r.status})`);
}

export function registerDetach(program: Command): void {
  withProbeOptions(program
    .command('detach')
    .description('detach a running `serve` probe from a worker (or all workers of a master)')
    .argument('<PID>', 'nginx master or worker pid'))
    .action(async (pidText: string, opts: ProbeOptions) => {
      const pid = parsePid(pidText);
      const proc = readNginxProc(pid);
      if (!proc) throw new ProbeError(`${pid} is not an nginx master or worker`);
      const workers = proc.role === 'master' ? workersOf(pid, { shuttingDown: true }) : [proc];
      const wanted = new Set(workers.map((w) => w.pid));
      const done: string[] = [];
      for (const e of readOwnEntries()) {
        for (const w of e.workers.filter((p) => wanted.has(p))) {
          await close(e, w);
          done.push(`detached worker ${w} (serve probe ${e.probe_pid})`);
        }
      }
      process.stdout.write((done.length ? done.join('\n') : `${pid}: not attached`) + '\n');
    });
}

// `nffi-inspect detach PID`: ask the running `serve` probe that holds PID (a worker, or every
// worker of a master) to let go, through its /json/close/<pid>. One-shot commands detach on
// their own when they end, so with no serve running there is nothing to do: "not attached".
import type { Command } from 'commander';
import { get } from 'node:http';
import { ProbeError } from '../../probe/errors.js';
import { readNginxProc, workersOf } from '../../probe/procs.js';
import { readEntries } from '../../probe/registry.js';
import { defaultRunDir } from '../../probe/run-dir.js';
import { parsePid, withProbeOptions, type ProbeOptions } from '../pid.js';

function close(port: number, pid: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: `/json/close/${pid}`, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new ProbeError(`serve probe on port ${port} refused to detach ${pid} (HTTP ${res.statusCode})`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => reject(new ProbeError(`cannot reach the serve probe on port ${port}: ${err.message}`)));
  });
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
      const dirs = opts.runDir ? [opts.runDir] : workers.map((w) => defaultRunDir(w.uid));
      const wanted = new Set(workers.map((w) => w.pid));
      const done: string[] = [];
      for (const e of readEntries(dirs)) {
        for (const w of e.workers.filter((p) => wanted.has(p))) {
          await close(e.port, w);
          done.push(`detached worker ${w} (serve probe ${e.probe_pid})`);
        }
      }
      process.stdout.write((done.length ? done.join('\n') : `${pid}: not attached`) + '\n');
    });
}

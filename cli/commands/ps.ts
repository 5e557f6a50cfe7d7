// `nffi-inspect ps [--no-check] [--json]`: nginx masters and workers on this host and whether
// each worker's agent is ready. "ready" is measured, not guessed: a quick attach (hello within
// 1 s, then an immediate detach) to every serving worker, all in parallel. Workers we may not
// attach to say "permission denied"; workers held by a running `serve` say "attached (serve
// PID)" (an agent serves one probe at a time); shutting-down workers and --no-check say "-".
import type { Command } from 'commander';
import { listNginx } from '../../client/host.js';
import { formatPs } from '../format/ps.js';
import { parsePid, printJson, withProbeOptions, type ProbeOptions } from '../pid.js';

interface Options extends ProbeOptions {
  check?: boolean;
}

export function registerPs(program: Command): void {
  withProbeOptions(program
    .command('ps')
    .description('list nginx masters and workers on this host, and whether each worker has the agent ready')
    .argument('[PID]', 'only this master (or the master of this worker)')
    .option('--no-check', 'do not try a quick attach to each worker')
    .option('--json', 'print JSON'))
    .action(async (pidText: string | undefined, opts: Options) => {
      const masters = await listNginx({
        ...(pidText !== undefined ? { only: parsePid(pidText) } : {}),
        ...(opts.check === false ? { check: false } : {}),
        ...(opts.runDir ? { runDir: opts.runDir } : {}),
      });
      if (opts.json) printJson({ masters });
      else process.stdout.write(formatPs(masters) + '\n');
    });
}

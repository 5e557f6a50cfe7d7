// `nffi-inspect detach PID`: ask this user's running `serve` probe that holds PID (a worker, or
// every worker of a master) to let go. One-shot commands detach on their own when they end, so
// with no serve running there is nothing to do: "not attached".
import type { Command } from 'commander';
import { detachServes } from '../../client/host.js';
import { parsePid, printJson, withProbeOptions, type ProbeOptions } from '../pid.js';

export function registerDetach(program: Command): void {
  withProbeOptions(program
    .command('detach')
    .description('detach a running `serve` probe from a worker (or all workers of a master)')
    .argument('<PID>', 'nginx master or worker pid')
    .option('--json', 'print JSON: {"pid","detached":[{"worker","serve"}]}'))
    .action(async (pidText: string, opts: ProbeOptions) => {
      const pid = parsePid(pidText);
      const done = await detachServes(pid);
      if (opts.json) return printJson({ pid, detached: done.map((d) => ({ worker: d.worker, serve: d.probePid })) });
      const lines = done.map((d) => `detached worker ${d.worker} (serve probe ${d.probePid})`);
      process.stdout.write((lines.length ? lines.join('\n') : `${pid}: not attached`) + '\n');
    });
}
